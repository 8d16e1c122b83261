import { runningFromSources, sourceRunnerCommand } from "./source-runner.js";

/**
 * The command that starts this CLI again, for the runner and deploy processes of the agents the
 * CLI starts (unless the user set `TERN_RUNNER_COMMAND`, which LocalAgent reads and checks
 * itself): the same node, flags and entry point as this process.
 *
 * Run from this repository's TypeScript sources (`pnpm tern`, through tsx), the CLI is compiled
 * to JavaScript first (`sourceRunnerCommand`, cached by the sources' hash): a process per run
 * must not spend seconds compiling TypeScript before it starts.
 */
export function ownCommand(): string[] {
  if (runningFromSources()) return sourceRunnerCommand();
  return [process.execPath, ...process.execArgv, process.argv[1] ?? ""];
}
