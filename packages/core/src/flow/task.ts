import { describe } from "../describe.js";
import { FlowDefinitionError } from "../errors.js";
import { currentGraph } from "./graph.js";
import {
  type AnyTask,
  type ResolvedTaskOptions,
  TASK,
  type Task,
  type TaskArgs,
  type TaskFunction,
  type TaskOptions,
  TRIGGERS,
} from "./task-types.js";

/**
 * Defines a typed task. The function receives the call's arguments and, last, a
 * {@link TaskContext}; annotate that parameter (`ctx: TaskContext`) when you use it.
 *
 * @example
 * const transform = task("transform", (data: number[]) => data.map((x) => x * 10));
 * const load = task("load", (data: number[], ctx: TaskContext) => ctx.logger.info(`got ${data}`), {
 *   maxRetries: 2,
 *   retryDelayMs: 1_000,
 * });
 */
export function task<F extends TaskFunction>(
  name: string,
  fn: F,
  options: TaskOptions = {},
): Task<TaskArgs<Parameters<F>>, ReturnType<F>> {
  if (typeof name !== "string" || name.trim() === "") {
    throw new FlowDefinitionError(`task(name, fn): name must be a non-empty string, got ${describe(name)}.`);
  }
  if (typeof fn !== "function") {
    throw new FlowDefinitionError(`task("${name}", fn): fn must be a function, got ${describe(fn)}.`);
  }
  const resolved = resolveTaskOptions(name, options);
  const call = (...args: unknown[]) => currentGraph(name).callTask(self, args, false);
  const self = call as unknown as AnyTask;
  Object.defineProperty(call, "name", { value: name });
  Object.defineProperties(call, {
    [TASK]: { value: true },
    taskName: { value: name, enumerable: true },
    options: { value: resolved, enumerable: true },
    fn: { value: fn },
    map: { value: (...args: unknown[]) => currentGraph(name).callTask(self, args, true) },
  });
  return self as unknown as Task<TaskArgs<Parameters<F>>, ReturnType<F>>;
}

const OPTION_KEYS = new Set([
  "maxRetries",
  "retryDelayMs",
  "retryBackoff",
  "maxRetryDelayMs",
  "timeoutMs",
  "trigger",
  "skipOnUpstreamSkip",
]);

function resolveTaskOptions(name: string, options: TaskOptions): ResolvedTaskOptions {
  if (typeof options !== "object" || options === null) {
    throw new FlowDefinitionError(`task("${name}"): options must be an object, got ${describe(options)}.`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) {
      throw new FlowDefinitionError(
        `task("${name}"): unknown option "${key}". Valid options: ${[...OPTION_KEYS].join(", ")}.`,
      );
    }
  }
  const where = `task("${name}")`;
  const maxRetries = options.maxRetries ?? 0;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new FlowDefinitionError(`${where}: maxRetries must be an integer >= 0, got ${describe(maxRetries)}.`);
  }
  const retryDelayMs = nonNegative(where, "retryDelayMs", options.retryDelayMs ?? 0);
  const maxRetryDelayMs = nonNegative(where, "maxRetryDelayMs", options.maxRetryDelayMs ?? Number.POSITIVE_INFINITY);
  const retryBackoff = options.retryBackoff ?? "fixed";
  if (retryBackoff !== "fixed" && retryBackoff !== "exponential") {
    throw new FlowDefinitionError(
      `${where}: retryBackoff must be "fixed" or "exponential", got ${describe(retryBackoff)}.`,
    );
  }
  const timeoutMs = options.timeoutMs;
  if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && timeoutMs > 0 && Number.isFinite(timeoutMs))) {
    throw new FlowDefinitionError(
      `${where}: timeoutMs must be a positive number of milliseconds, got ${describe(timeoutMs)}. Leave it out for no limit.`,
    );
  }
  const trigger = options.trigger ?? "allSuccessful";
  if (!TRIGGERS.includes(trigger)) {
    throw new FlowDefinitionError(
      `${where}: unknown trigger ${describe(trigger)}. Valid triggers: ${TRIGGERS.join(", ")}.`,
    );
  }
  const skipOnUpstreamSkip = options.skipOnUpstreamSkip ?? true;
  if (typeof skipOnUpstreamSkip !== "boolean") {
    throw new FlowDefinitionError(
      `${where}: skipOnUpstreamSkip must be a boolean, got ${describe(skipOnUpstreamSkip)}.`,
    );
  }
  return Object.freeze({
    maxRetries,
    retryDelayMs,
    retryBackoff,
    maxRetryDelayMs,
    timeoutMs,
    trigger,
    skipOnUpstreamSkip,
  });
}

function nonNegative(where: string, key: string, value: unknown): number {
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new FlowDefinitionError(`${where}: ${key} must be a number of milliseconds >= 0, got ${describe(value)}.`);
  }
  return value;
}

export { describe } from "../describe.js";
