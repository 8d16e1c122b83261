import type { TaskLogger } from "../runner/logger.js";
import type { Input, Inputs, Ref, Unmapped } from "./ref.js";

/** What every task function receives as its last argument. */
export interface TaskContext {
  /** Aborted when the run is cancelled or the task's `timeoutMs` passes. */
  readonly signal: AbortSignal;
  /** Structured logger; its records are kept with the task run. */
  readonly logger: TaskLogger;
  /** 1 for the first attempt, 2 for the first retry, and so on. */
  readonly attempt: number;
  /** The run's parameters, defaults applied. */
  readonly parameters: Readonly<Record<string, unknown>>;
  /** The flow run's id. */
  readonly runId: string;
  /** This task run's id: `<runId>/<slug>`, plus `[<mapIndex>]` for a mapped child. */
  readonly taskRunId: string;
  /** The child's position for a mapped task run, otherwise `undefined`. */
  readonly mapIndex: number | undefined;
}

/** Names of the built-in triggers: when a task runs, given its upstream tasks' states. */
export type TriggerName = "allSuccessful" | "allFinished" | "anySuccessful" | "anyFailed" | "allFailed";

/** The trigger names, in documentation order. */
export const TRIGGERS: readonly TriggerName[] = [
  "allSuccessful",
  "allFinished",
  "anySuccessful",
  "anyFailed",
  "allFailed",
];

/** Options of {@link task}. */
export interface TaskOptions {
  /**
   * How many times a failed or timed-out attempt is retried.
   * @default 0
   */
  readonly maxRetries?: number;
  /**
   * Wait before each retry, in milliseconds.
   * @default 0
   */
  readonly retryDelayMs?: number;
  /**
   * `exponential` doubles the wait after each retry (`retryDelayMs * 2^(attempt-1)`).
   * @default "fixed"
   */
  readonly retryBackoff?: "fixed" | "exponential";
  /**
   * Upper bound of the wait between retries, in milliseconds.
   * @default no bound
   */
  readonly maxRetryDelayMs?: number;
  /**
   * Time allowed to each attempt, in milliseconds. When it passes, the task's signal is
   * aborted and the attempt ends `TimedOut` (and is retried if retries remain).
   * @default no limit
   */
  readonly timeoutMs?: number;
  /**
   * When the task runs, given its upstream tasks' final states. A task with no upstream
   * always runs.
   * @default "allSuccessful"
   */
  readonly trigger?: TriggerName;
  /**
   * Skip this task when any upstream task was skipped (before its trigger is checked).
   * @default true
   */
  readonly skipOnUpstreamSkip?: boolean;
}

/** Task options with every default applied. */
export interface ResolvedTaskOptions {
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  readonly retryBackoff: "fixed" | "exponential";
  readonly maxRetryDelayMs: number;
  readonly timeoutMs: number | undefined;
  readonly trigger: TriggerName;
  readonly skipOnUpstreamSkip: boolean;
}

/** A function's parameters without a trailing {@link TaskContext}. */
export type TaskArgs<P extends readonly unknown[]> = P extends readonly [...infer A, infer Last]
  ? [Exclude<Last, undefined>] extends [TaskContext]
    ? A
    : P
  : P;

/** One argument of `task.map(...)`: a list (or a reference to one), or a shared value. */
export type MapInput<T> = Input<readonly T[]> | Unmapped<T>;

/** Maps a task's parameter list to what `task.map(...)` accepts. */
export type MapInputs<A extends readonly unknown[]> = { [K in keyof A]: MapInput<A[K]> };

/** Any task function: its arguments, then the context. */
// biome-ignore lint/suspicious/noExplicitAny: task functions are checked by their own signature.
export type TaskFunction = (...args: any[]) => unknown;

/**
 * A typed task. Call it inside a flow's build function with values or references; the call
 * returns a reference to its result.
 */
export interface Task<A extends readonly unknown[] = unknown[], R = unknown> {
  (...args: Inputs<A>): Ref<Awaited<R>>;
  /** The task's name, the base of its task runs' slugs. */
  readonly taskName: string;
  /** The task's options, defaults applied. */
  readonly options: ResolvedTaskOptions;
  /** The function the task runs. */
  readonly fn: TaskFunction;
  /**
   * Fans out over lists: one child task run per element. Wrap arguments that every child
   * shares in `unmapped(...)`. Mapping over an empty list gives an empty list.
   */
  map(...args: MapInputs<A>): Ref<Awaited<R>[]>;
}

// biome-ignore lint/suspicious/noExplicitAny: any task, whatever its signature.
export type AnyTask = Task<any[], unknown>;

/** The brand every task function carries. */
export const TASK = Symbol.for("tern.task");

/** Whether `value` is a task made by {@link task}. */
export function isTask(value: unknown): value is AnyTask {
  return typeof value === "function" && TASK in value;
}
