/**
 * Runner output in one stream. An agent reads a runner's stdout and stderr through two pipes,
 * and lines waiting in both are read in no particular order: a task's `console.log` could show
 * after the `console.error` it preceded. `tern agent` sets this variable for the runners it
 * starts; `tern execute` then writes its stdout to stderr, one pipe, which keeps the order.
 */
export const STDOUT_TO_STDERR = "TERN_STDOUT_TO_STDERR";

/** Sends what this process writes to stdout to stderr when {@link STDOUT_TO_STDERR} is `1`. */
export function routeStdoutToStderrIfAsked(env: Readonly<Record<string, string | undefined>> = process.env): void {
  if (env[STDOUT_TO_STDERR] !== "1") return;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
}
