import type { FlowRunResult } from "../flow/result.js";
import type { TaskRun } from "./engine.js";
import type { JsonValue, SerializedFlowRun, SerializedTaskRun, SerializedValue } from "./serialized.js";

export type {
  JsonValue,
  SerializedFlowRun,
  SerializedLogRecord,
  SerializedTaskRun,
  SerializedValue,
} from "./serialized.js";

/**
 * Turns a run's states and results into an object that `JSON.stringify` writes without loss.
 *
 * @example
 * const run = await flow.run();
 * await writeFile("run.json", JSON.stringify(serializeRun(run)));
 */
export function serializeRun(run: FlowRunResult): SerializedFlowRun {
  return {
    format: "tern.run/1",
    runId: run.runId,
    flow: run.flow,
    state: run.state,
    ...(run.message === undefined ? {} : { message: run.message }),
    parameters: mapValues(run.parameters),
    outputs: mapValues(run.outputs),
    taskRuns: run.taskRuns.map(serializeTaskRun),
    startedAtMs: run.startedAtMs,
    endedAtMs: run.endedAtMs,
  };
}

/** A task run in JSON form. */
export function serializeTaskRun(taskRun: TaskRun): SerializedTaskRun {
  const out: Record<string, unknown> = {
    id: taskRun.id,
    slug: taskRun.slug,
    task: taskRun.task,
    state: taskRun.state,
    attempts: taskRun.attempts,
  };
  if (taskRun.mapIndex !== undefined) out.mapIndex = taskRun.mapIndex;
  if (taskRun.message !== undefined) out.message = taskRun.message;
  if (taskRun.error !== undefined) out.error = { ...taskRun.error };
  if (taskRun.attemptErrors !== undefined) out.attemptErrors = taskRun.attemptErrors.map((e) => ({ ...e }));
  if (taskRun.state === "Success") out.result = toSerializedValue(taskRun.result);
  out.logs = taskRun.logs.map((r) => {
    const { fields, ...rest } = r;
    return fields === undefined ? rest : { ...rest, fields: toSerializedValue(fields) };
  });
  if (taskRun.startedAtMs !== undefined) out.startedAtMs = taskRun.startedAtMs;
  if (taskRun.endedAtMs !== undefined) out.endedAtMs = taskRun.endedAtMs;
  return out as unknown as SerializedTaskRun;
}

/** Reads a value back from its JSON form; an unserializable one is `undefined`. */
export function deserializeValue(value: SerializedValue): unknown {
  return value.kind === "json" ? value.value : undefined;
}

/** Checks `value` and returns its JSON form. */
export function toSerializedValue(value: unknown): SerializedValue {
  if (value === undefined) return { kind: "undefined" };
  try {
    return { kind: "json", value: toJson(value, "$", new Set()) };
  } catch (error) {
    if (error instanceof NotJson) {
      return { kind: "unserializable", type: error.type, path: error.path, reason: error.message };
    }
    throw error;
  }
}

class NotJson extends Error {
  constructor(
    readonly type: string,
    readonly path: string,
    reason: string,
  ) {
    super(reason);
  }
}

function toJson(value: unknown, path: string, seen: Set<object>): JsonValue {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) throw new NotJson("number", path, `${value} at ${path} is not a JSON number`);
      return value;
    case "bigint":
      throw new NotJson("bigint", path, `BigInt ${value}n at ${path} has no JSON form; return it as a string`);
    case "undefined":
      throw new NotJson("undefined", path, `undefined at ${path} has no JSON form inside an array; use null`);
    case "function":
    case "symbol":
      throw new NotJson(typeof value, path, `a ${typeof value} at ${path} has no JSON form`);
  }
  if (value === null) return null;
  const object = value as object;
  if (seen.has(object)) throw new NotJson("circular", path, `the value at ${path} refers to itself (a cycle)`);
  seen.add(object);
  try {
    if (Array.isArray(object)) return object.map((v, i) => toJson(v, `${path}[${i}]`, seen));
    const toJSON = (object as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return toJson(toJSON.call(object), path, seen);
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const type = (object as { constructor?: { name?: string } }).constructor?.name ?? "object";
      throw new NotJson(type, path, `a ${type} at ${path} has no JSON form; return a plain object or array`);
    }
    const out: { [key: string]: JsonValue } = {};
    for (const [key, v] of Object.entries(object)) {
      if (v === undefined) continue; // an absent property and an undefined one read the same
      out[key] = toJson(v, `${path}.${key}`, seen);
    }
    return out;
  } finally {
    seen.delete(object);
  }
}

function mapValues(values: Readonly<Record<string, unknown>>): Record<string, SerializedValue> {
  const out: Record<string, SerializedValue> = {};
  for (const [key, value] of Object.entries(values)) out[key] = toSerializedValue(value);
  return out;
}
