import type { RunRecord, SerializedTaskRun } from "@tern/core/plugin";

/** A task run's name as `tern logs` and `runs show` print it: `slug`, or `slug[i]` in a map. */
export function taskRunName(t: SerializedTaskRun): string {
  return t.mapIndex === undefined ? t.slug : `${t.slug}[${t.mapIndex}]`;
}

/** What went wrong in a task run, in a line, or undefined when nothing did in one attempt. */
function taskRunTrouble(t: SerializedTaskRun): string | undefined {
  if (t.state === "Success" && t.attempts <= 1) return undefined;
  const attempts = t.attempts === 1 ? "1 attempt" : `${t.attempts} attempts`;
  // The error itself, when there is one: the message repeats the attempts.
  const why =
    t.error === undefined
      ? t.message
      : t.error.name === "Error"
        ? t.error.message
        : `${t.error.name}: ${t.error.message}`;
  return `[${taskRunName(t)}] ${t.state} after ${attempts}${why === undefined ? "" : `: ${why}`}`;
}

/**
 * What `tern logs` says of a run with no log record, so that an empty log still explains
 * itself: the run's state and reason, then each task run that failed or was retried, or what
 * to look at when no task ran.
 */
export function noOutputLines(run: RunRecord, taskRuns: readonly SerializedTaskRun[]): string[] {
  const lines = [`Run ${run.id} (${run.state}${run.reason ? `: ${run.reason}` : ""}) has no task output.`];
  if (taskRuns.length === 0) {
    if (run.state === "Scheduled") lines.push(`It has not started yet: tern why ${run.id.slice(0, 8)}`);
    else lines.push(`No task ran.${run.state === "Failed" ? " The reason above says why." : ""}`);
    return lines;
  }
  const troubles = taskRuns.map(taskRunTrouble).filter((line) => line !== undefined);
  const ok = taskRuns.length - troubles.length;
  if (troubles.length > 0) lines.push("Task runs that failed or were retried:", ...troubles.map((l) => `  ${l}`));
  if (ok > 0) {
    const which = ok < taskRuns.length ? `The other ${ok}` : ok === 1 ? "The" : `All ${ok}`;
    lines.push(`${which} task run${ok === 1 ? "" : "s"} succeeded at the first attempt, printing nothing.`);
  }
  return lines;
}
