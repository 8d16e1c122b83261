/** Task runs: what a flow run reports per task use (or mapped child), and the record behind one. */
import type { LogRecord } from "./logger.js";
import type { TaskRunState } from "./states.js";

/** An error a task run ended with. */
export interface TaskRunError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

/**
 * The error of one attempt that failed or timed out and was retried. Only what explains the
 * attempt is kept (no stack), and the message is cut to {@link ATTEMPT_ERROR_MESSAGE_LIMIT}
 * characters, so that a task retried many times with long errors keeps a small record.
 */
export interface AttemptError {
  /** The attempt's number, 1 for the first. */
  readonly attempt: number;
  /** The error's type (its `name`, e.g. `TypeError`, `TaskTimeoutError`). */
  readonly name: string;
  readonly message: string;
  /** Whether the attempt ran out of time (its task's `timeoutMs`) rather than threw. */
  readonly timedOut: boolean;
}

/** Retried attempts' errors kept per task run: the most recent ones; older ones are dropped. */
export const MAX_ATTEMPT_ERRORS = 10;

/** Characters of an attempt error's message that are kept; the rest is cut with a note. */
export const ATTEMPT_ERROR_MESSAGE_LIMIT = 1000;

/** One run of one task use (or of one mapped child). */
export interface TaskRun {
  /** `<runId>/<slug>`, plus `[<mapIndex>]` for a mapped child. */
  readonly id: string;
  /** The task use's slug, unique in the flow. */
  readonly slug: string;
  /** The task's name. */
  readonly task: string;
  readonly state: TaskRunState;
  /** Attempts made. A mapped parent makes none itself: see its children. */
  readonly attempts: number;
  /** The value the task returned, when it succeeded; a mapped parent holds its children's. */
  readonly result?: unknown;
  /** The error of the last failed attempt. */
  readonly error?: TaskRunError;
  /**
   * The errors of earlier attempts that failed and were retried, oldest first, at most
   * {@link MAX_ATTEMPT_ERRORS} (the most recent). Absent when no attempt was retried. The last
   * attempt's own error is `error`, so a task that succeeded at a retry still says what went
   * wrong before.
   */
  readonly attemptErrors?: readonly AttemptError[];
  /** Why the task run is in its state, for states other than `Success`. */
  readonly message?: string;
  /** Position of a mapped child in its parent's list. */
  readonly mapIndex?: number;
  /** What the task logged, `console.*` included. */
  readonly logs: readonly LogRecord[];
  readonly startedAtMs?: number;
  readonly endedAtMs?: number;
}

/** The shared empty log list of a task run that logged nothing yet. */
export const NO_LOGS: readonly LogRecord[] = Object.freeze([]);

/** A task run as the scheduler updates it. */
export class TaskRunRecord implements TaskRun {
  state: TaskRunState = "Pending";
  attempts = 0;
  result: unknown = undefined;
  error?: TaskRunError;
  attemptErrors?: AttemptError[];
  message?: string;
  logs: readonly LogRecord[] = NO_LOGS;
  startedAtMs?: number;
  endedAtMs?: number;

  constructor(
    readonly id: string,
    readonly slug: string,
    readonly task: string,
    readonly mapIndex: number | undefined,
  ) {}
}

/**
 * Notes the error of `attempt`, which failed (or `timedOut`) and is about to be retried, on
 * `record`: bounded in count and length, as said at {@link AttemptError}.
 */
export function recordRetriedAttempt(
  record: TaskRunRecord,
  attempt: number,
  error: TaskRunError,
  timedOut: boolean,
): void {
  record.attemptErrors ??= [];
  const list = record.attemptErrors;
  list.push({ attempt, name: error.name, message: cutMessage(error.message), timedOut });
  if (list.length > MAX_ATTEMPT_ERRORS) list.splice(0, list.length - MAX_ATTEMPT_ERRORS);
}

function cutMessage(message: string): string {
  if (message.length <= ATTEMPT_ERROR_MESSAGE_LIMIT) return message;
  return `${message.slice(0, ATTEMPT_ERROR_MESSAGE_LIMIT)}… (${message.length - ATTEMPT_ERROR_MESSAGE_LIMIT} more characters)`;
}

/** What a task threw, as a task run's error. */
export function toTaskRunError(error: unknown): TaskRunError {
  if (error instanceof Error) {
    return error.stack === undefined
      ? { name: error.name, message: error.message }
      : { name: error.name, message: error.message, stack: error.stack };
  }
  return { name: "NonError", message: `a non-Error value was thrown: ${safeString(error)}` };
}

/** `String(value)`, or its `Object.prototype.toString` form when that throws. */
export function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
