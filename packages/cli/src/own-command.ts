/**
 * The command that starts this CLI again: the same node, flags and entry point as this process.
 * Agents the CLI starts run their runners and deploy processes with it, unless the user set
 * `TERN_RUNNER_COMMAND` (which LocalAgent reads and checks itself).
 */
export function ownCommand(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1] ?? ""];
}
