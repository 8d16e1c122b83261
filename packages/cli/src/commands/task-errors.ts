import type { RunRecord, SerializedTaskRun } from "@tern/core/plugin";

/** A task run's name as `tern logs` and `runs show` print it: `slug`, or `slug[i]` in a map. */
export function taskRunName(t: SerializedTaskRun): string {
  return t.mapIndex === undefined ? t.slug : `${t.slug}[${t.mapIndex}]`;
}

/** An error as a line: its message, led by its type unless that is plain `Error`. */
function errorText(error: { readonly name: string; readonly message: string }): string {
  return error.name === "Error" ? error.message : `${error.name}: ${error.message}`;
}

/**
 * The errors of a task run's earlier attempts, a line each (`attempt 1 failed: ...`), oldest
 * first; none for a record without them (one attempt, or written before they were kept). A
 * line is cut at its first line break, so that it stays one line under its task.
 */
export function attemptErrorLines(t: SerializedTaskRun): string[] {
  const lines = (t.attemptErrors ?? []).map(
    (e) => `attempt ${e.attempt} ${e.timedOut ? "timed out" : "failed"}: ${firstLine(errorText(e))}`,
  );
  const first = t.attemptErrors?.[0]?.attempt;
  // The engine keeps the most recent attempts only: say that older ones were dropped.
  if (first !== undefined && first > 1) lines.unshift(`(attempts 1-${first - 1}: errors not kept)`);
  return lines;
}

function firstLine(text: string): string {
  const end = text.indexOf("\n");
  return end === -1 ? text : `${text.slice(0, end)} ...`;
}

/**
 * What went wrong in a task run, in a line then its earlier attempts' errors, or nothing when
 * nothing did in one attempt.
 */
function taskRunTrouble(t: SerializedTaskRun): string[] {
  if (t.state === "Success" && t.attempts <= 1) return [];
  const attempts = t.attempts === 1 ? "1 attempt" : `${t.attempts} attempts`;
  // The error itself, when there is one: the message repeats the attempts. A task that
  // succeeded at a retry keeps the error of the attempt before, listed below when recorded.
  const listed = t.state === "Success" && t.attemptErrors !== undefined;
  const why = t.error === undefined || listed ? t.message : errorText(t.error);
  return [
    `[${taskRunName(t)}] ${t.state} after ${attempts}${why === undefined ? "" : `: ${why}`}`,
    ...attemptErrorLines(t).map((line) => `  ${line}`),
  ];
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
  const troubles = taskRuns.map(taskRunTrouble).filter((trouble) => trouble.length > 0);
  const ok = taskRuns.length - troubles.length;
  if (troubles.length > 0) {
    lines.push("Task runs that failed or were retried:", ...troubles.flat().map((l) => `  ${l}`));
  }
  if (ok > 0) {
    const which = ok < taskRuns.length ? `The other ${ok}` : ok === 1 ? "The" : `All ${ok}`;
    lines.push(`${which} task run${ok === 1 ? "" : "s"} succeeded at the first attempt, printing nothing.`);
  }
  return lines;
}
