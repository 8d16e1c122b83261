/**
 * Running npm for the dependencies layer: the npm that comes with the running Node (or the one on
 * PATH), always with an argument array (never a shell), its environment cleaned of a package
 * manager's variables, and its failures in words (the command, the exit code, npm's last lines).
 */
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, readFile, realpath, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, isAbsolute, join } from "node:path";
import { TernError } from "@tern/core";

/** How to run npm: a command and the arguments before npm's own (`node /…/npm-cli.js`). */
export interface NpmCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** npm's version when it is known without running it (read from npm's package.json). */
  readonly version?: string;
}

/** Whether `path` is a file (or a link to one). */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** npm's version from the package.json above its `bin/npm-cli.js`, when that is where `cli` leads. */
async function npmVersionBeside(cli: string): Promise<string | undefined> {
  try {
    const real = await realpath(cli);
    const manifest = JSON.parse(await readFile(join(dirname(real), "..", "package.json"), "utf8")) as {
      name?: unknown;
      version?: unknown;
    };
    return manifest.name === "npm" && typeof manifest.version === "string" ? manifest.version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The npm that comes with the running Node: `npm-cli.js` in Node's own install (beside the `node`
 * binary on Windows, `../lib/node_modules/npm` on Unix), run with that Node; else `npm` on PATH.
 * Undefined when there is none.
 */
export async function findNpm(
  execPath: string = process.execPath,
  env: NodeJS.ProcessEnv = process.env,
): Promise<NpmCommand | undefined> {
  const bin = dirname(execPath);
  for (const cli of [
    join(bin, "..", "lib", "node_modules", "npm", "bin", "npm-cli.js"),
    join(bin, "node_modules", "npm", "bin", "npm-cli.js"),
  ]) {
    if (await isFile(cli)) {
      const version = await npmVersionBeside(cli);
      return version === undefined ? { command: execPath, args: [cli] } : { command: execPath, args: [cli], version };
    }
  }
  // On Windows npm on PATH is npm.cmd, which only a shell runs: Node's own install is the one used there.
  if (process.platform === "win32") return undefined;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "" || !isAbsolute(dir)) continue;
    const npm = join(dir, "npm");
    try {
      await access(npm, constants.X_OK);
    } catch {
      continue;
    }
    const real = await realpath(npm).catch(() => npm);
    const version = basename(real) === "npm-cli.js" ? await npmVersionBeside(real) : undefined;
    return version === undefined ? { command: npm, args: [] } : { command: npm, args: [], version };
  }
  return undefined;
}

/** `npm install --os=linux …` as a reader would type it. */
export function inWords(npm: NpmCommand, args: readonly string[]): string {
  const program = npm.args.length > 0 && basename(npm.args[0] as string) === "npm-cli.js" ? "npm" : npm.command;
  return [program, ...args].join(" ");
}

export interface Ran {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  /** The end of stderr (at most 64 KiB). */
  readonly stderr: string;
}

/** Runs `npm` with an argument array (never a shell); `onLine` sees each stderr line as it comes. */
export function runNpm(
  npm: NpmCommand,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  onLine?: (line: string) => void,
): Promise<Ran> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(npm.command, [...npm.args, ...args], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      windowsHide: true,
      shell: false,
    });
    let stdout = "";
    let stderr = "";
    let partial = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout = (stdout + chunk).slice(-65_536);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-65_536);
      const lines = (partial + chunk).split(/\r?\n/);
      partial = lines.pop() ?? "";
      for (const line of lines) onLine?.(line);
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (partial !== "") onLine?.(partial);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/**
 * The environment npm runs in: the caller's (registry settings and tokens in `npm_config_*`
 * variables are kept), without what a package manager running this process sets for its own
 * scripts (`pnpm exec` passes `npm_config_user_agent` and pnpm-only settings, which npm would
 * take as its own or warn about).
 */
export function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (
      lower === "npm_config_user_agent" ||
      lower === "npm_config_verify_deps_before_run" ||
      lower === "npm_command" ||
      lower === "npm_execpath" ||
      lower === "npm_node_execpath" ||
      lower.startsWith("npm_lifecycle_") ||
      lower.startsWith("npm_package_") ||
      lower.startsWith("pnpm_")
    ) {
      continue;
    }
    env[key] = value;
  }
  return env;
}

export async function npmVersion(npm: NpmCommand): Promise<string> {
  if (npm.version !== undefined) return npm.version;
  let ran: Ran;
  try {
    ran = await runNpm(npm, ["--version"], tmpdir(), npmEnv());
  } catch (error) {
    throw npmMissing(npm, error);
  }
  const version = ran.stdout.trim();
  if (ran.code !== 0 || !/^\d+\.\d+\.\d+/.test(version)) {
    throw new TernError(
      "DEPENDENCY",
      `\`${inWords(npm, ["--version"])}\` did not give npm's version (exit ${ran.code ?? ran.signal}): ${lastLines(ran.stderr) || ran.stdout.trim()}. ` +
        "Check that npm works on this machine (npm --version).",
    );
  }
  return version;
}

export function npmMissing(npm: NpmCommand | undefined, cause?: unknown): TernError {
  return new TernError(
    "DEPENDENCY",
    npm === undefined
      ? `npm is needed to install the Docker storage's dependencies, and there is none beside this Node (${process.execPath}) nor on PATH. Install npm (it comes with Node.js), or remove the dependencies.`
      : `npm (${[npm.command, ...npm.args].join(" ")}) could not be started: ${(cause as Error | undefined)?.message ?? String(cause)}. Install npm (it comes with Node.js), or fix PATH.`,
    { cause },
  );
}

export function lastLines(text: string, count = 15): string {
  return text
    .split(/\r?\n/)
    .filter((line) => line.trim() !== "")
    .slice(-count)
    .join("\n");
}
