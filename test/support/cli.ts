import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "packages", "cli", "src", "main.ts");

/**
 * The environment of a CLI child: this process's, without the test runner's NODE_OPTIONS and
 * without a runner command (the CLI sets its own), plus `env`.
 */
function cliEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return { ...process.env, NODE_OPTIONS: undefined, TERN_RUNNER_COMMAND: undefined, ...env };
}

/** What a `tern` invocation printed and returned. */
export interface TernResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A throwaway TERN_HOME and a `tern` bound to it. */
export interface TernHome {
  readonly home: string;
  tern(args: readonly string[], env?: Record<string, string>): Promise<TernResult>;
  /** Runs `tern ... --json` and parses stdout, failing on a non-zero exit. */
  json<T = unknown>(args: readonly string[], env?: Record<string, string>): Promise<T>;
  cleanup(): Promise<void>;
}

/** Runs the CLI from its sources in a child process, as a user would from the repository root. */
export function runTern(
  args: readonly string[],
  env: Record<string, string | undefined>,
  cwd = ".",
): Promise<TernResult> {
  const childEnv = cliEnv(env);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--conditions=@tern/source", "--import", "tsx", CLI, ...args],
      { cwd: join(ROOT, cwd), env: childEnv as NodeJS.ProcessEnv, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The command line that runs the CLI from its sources (what a runner command is made of). */
export const TERN_COMMAND: readonly string[] = [process.execPath, "--conditions=@tern/source", "--import", "tsx", CLI];

/** Children started under a wrapper, each the leader of a process group of its own. */
const grouped = new WeakSet<ChildProcess>();

/**
 * Starts a long-running `tern` (e.g. an agent) in the background; stop it with `stopTern`.
 * `wrapper` goes before the command (for instance `["faketime", "-f", "+90s"]`). faketime runs
 * tern as a child of its own and does not pass signals on, so a wrapped tern gets a process group
 * that `stopTern` signals whole: otherwise the agent would outlive the test, polling for ever.
 */
export function spawnTern(
  args: readonly string[],
  env: Record<string, string | undefined>,
  wrapper: readonly string[] = [],
): ChildProcess {
  const childEnv = cliEnv(env);
  const [command, ...rest] = [...wrapper, ...TERN_COMMAND, ...args] as [string, ...string[]];
  const child = spawn(command, rest, {
    cwd: ROOT,
    env: childEnv as NodeJS.ProcessEnv,
    stdio: ["ignore", "pipe", "pipe"],
    detached: wrapper.length > 0,
  });
  if (wrapper.length > 0) grouped.add(child);
  return child;
}

/** Sends `signal` to `child`, and to everything in its process group when it leads one. */
function signalTern(child: ChildProcess, signal: NodeJS.Signals): void {
  if (grouped.has(child) && child.pid !== undefined) {
    try {
      process.kill(-child.pid, signal);
      return;
    } catch {
      // The group is gone already.
    }
  }
  child.kill(signal);
}

/** Waits until `child` printed a line matching `pattern` on stderr. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; got: ${seen}`)), timeoutMs);
    child.stderr?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** Sends SIGTERM and waits for the exit code. */
export function stopTern(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once("exit", (code) => resolve(code));
    signalTern(child, "SIGTERM");
  });
}

/** Makes a fresh TERN_HOME under the OS temp directory. */
export async function ternHome(): Promise<TernHome> {
  const home = await mkdtemp(join(tmpdir(), "tern-e2e-"));
  const tern = (args: readonly string[], env: Record<string, string> = {}) =>
    runTern(args, { TERN_HOME: home, ...env });
  return {
    home,
    tern,
    async json<T>(args: readonly string[], env?: Record<string, string>): Promise<T> {
      const result = await tern([...args, "--json"], env);
      if (result.code !== 0) throw new Error(`tern ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
      return JSON.parse(result.stdout) as T;
    },
    cleanup: () => rm(home, { recursive: true, force: true }),
  };
}
