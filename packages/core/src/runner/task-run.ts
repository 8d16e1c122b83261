/** Task runs: what a flow run reports per task use (or mapped child), and the record behind one. */
import type { LogRecord } from "./logger.js";
import type { TaskRunState } from "./states.js";

/** An error a task run ended with. */
export interface TaskRunError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

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
