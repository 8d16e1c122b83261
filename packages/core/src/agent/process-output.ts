/** What the agent says about a child process that ended: how, and its last words. */

/** How a runner process ended, in words. */
export function exitDescription(code: number | null, signal: string | null): string {
  if (signal === "SIGKILL") return "was killed by SIGKILL (out of memory, or killed by the system or a user)";
  if (signal === "SIGTERM" || signal === "SIGINT") return `was stopped by ${signal}`;
  if (signal !== null) return `crashed with ${signal}`;
  return `exited with code ${code}`;
}

/** The last line of a process's error output, leaving out the runner's own progress lines. */
export function lastErrorLine(text: string): string {
  const lines = text
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("runner: "));
  return (lines.at(-1) ?? "").trim().slice(0, 500);
}

export function lastLine(text: string): string {
  const lines = text
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "");
  return (lines.at(-1) ?? "").trim().slice(0, 500);
}
