/**
 * The runner bundle's entry: `tern execute` for the run named by TERN_RUN_ID, as one ESM file
 * (built by `scripts/bundle-runner.ts`) that a stock Node image runs with no install step.
 *
 * FargateTaskEnvironment's bootstrap (`BOOTSTRAP` in @tern/env-fargate) downloads this bundle,
 * checks its sha256 and imports it; importing it runs the run and exits the process with the
 * runner's exit code. It prepares the process as the custom image's entrypoint.sh does: it
 * refuses to start without TERN_RUN_ID and TERN_BACKEND (exit 64, with the fix), and defaults
 * TERN_HOME to a writable place (`<tmpdir>/tern`) where verified flow bundles are written.
 *
 * Run directly (`node runner.mjs execute <runId>`), the bundle is simply the tern CLI: the
 * CLI's own entry point handles the arguments and this module stays out of the way.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";
import { isEntryModule } from "./entry.js";
import { setLeaseKeeperEntry } from "./lease-keeper.js";
import { main } from "./main.js";

/** The exit code of a runner started without what it needs (EX_USAGE, as entrypoint.sh). */
export const RUNNER_MISSING_ENV_EXIT = 64;

/** Why the runner cannot start with this environment, or undefined when it can. */
export function runnerEnvProblem(env: Readonly<Record<string, string | undefined>>): string | undefined {
  if ((env.TERN_RUN_ID ?? "").trim() === "") {
    return "tern-runner: TERN_RUN_ID is not set. The runner runs one flow run: start it through a FargateTaskEnvironment (its RunTask overrides set TERN_RUN_ID and TERN_BACKEND).";
  }
  const backend = (env.TERN_BACKEND ?? "").trim();
  if (backend === "") {
    return "tern-runner: TERN_BACKEND is not set: the runner cannot find its run. Set it to the agent's backend, for example dynamodb://tern-state?region=eu-west-1.";
  }
  if (backend.startsWith("sqlite:")) {
    return `tern-runner: TERN_BACKEND is ${backend}, a file on another machine. Use the shared backend: dynamodb://<table>?region=<region>.`;
  }
  return undefined;
}

/**
 * Runs the run named by TERN_RUN_ID in this process and resolves to the exit code (0 only on
 * Success, 64 when the environment is incomplete, otherwise what `tern execute` returns).
 */
export async function runRunner(): Promise<number> {
  const problem = runnerEnvProblem(process.env);
  if (problem !== undefined) {
    process.stderr.write(`${problem}\n`);
    return RUNNER_MISSING_ENV_EXIT;
  }
  process.env.TERN_HOME ??= join(tmpdir(), "tern");
  process.env.NODE_ENV ??= "production";
  // The agent reading our output may be gone: a closed pipe must not crash the run.
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});
  return main(["execute"]);
}

// Bundled, lease-keeper.ts shares this file too: the lease keeper's worker starts from it (and
// runs the keeper, not a run, when it loads this file).
if (!import.meta.url.endsWith(".ts")) setLeaseKeeperEntry(new URL(import.meta.url));

// Bundled, main.ts shares this file: run directly, the CLI's entry point already handles argv.
// From the sources (`node --import tsx runner.ts`), main.ts is another file, so run here too.
if (isMainThread && (!isEntryModule(import.meta.url) || import.meta.url.endsWith(".ts"))) {
  const code = await runRunner();
  // Let buffered output reach the pipe (the task's log) before exiting with the runner's code.
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}
