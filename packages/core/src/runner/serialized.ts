import type { AttemptError, TaskRunError } from "./engine.js";
import type { LogRecord } from "./logger.js";
import type { FlowRunState, TaskRunState } from "./states.js";

/** A JSON value, exactly. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A value in JSON form. Values JSON cannot hold exactly (BigInt, functions, symbols, NaN,
 * Infinity, Map, Set, class instances without `toJSON`, cycles, `undefined` in arrays) are
 * reported as `unserializable`, with the path of the offending part, never dropped silently.
 */
export type SerializedValue =
  | { readonly kind: "json"; readonly value: JsonValue }
  | { readonly kind: "undefined" }
  | { readonly kind: "unserializable"; readonly type: string; readonly path: string; readonly reason: string };

/** A task run in JSON form. */
export interface SerializedTaskRun {
  readonly id: string;
  readonly slug: string;
  readonly task: string;
  readonly state: TaskRunState;
  readonly attempts: number;
  readonly mapIndex?: number;
  readonly message?: string;
  readonly error?: TaskRunError;
  /** Earlier attempts' errors (see `TaskRun.attemptErrors`); absent in records written before it. */
  readonly attemptErrors?: readonly AttemptError[];
  readonly result?: SerializedValue;
  readonly logs: readonly SerializedLogRecord[];
  readonly startedAtMs?: number;
  readonly endedAtMs?: number;
}

/** A log record in JSON form; its fields are checked like results. */
export interface SerializedLogRecord extends Omit<LogRecord, "fields"> {
  readonly fields?: SerializedValue;
}

/** A flow run's states and results in JSON form. */
export interface SerializedFlowRun {
  readonly format: "tern.run/1";
  readonly runId: string;
  readonly flow: string;
  readonly state: FlowRunState;
  readonly message?: string;
  readonly parameters: Readonly<Record<string, SerializedValue>>;
  readonly outputs: Readonly<Record<string, SerializedValue>>;
  readonly taskRuns: readonly SerializedTaskRun[];
  readonly startedAtMs: number;
  readonly endedAtMs: number;
}
