/**
 * `@tern/core`: define flows of typed tasks and run them.
 *
 * @example
 * import { Flow, task } from "@tern/core";
 *
 * const extract = task("extract", () => [1, 2, 3]);
 * const double = task("double", (xs: number[]) => xs.map((x) => x * 2));
 * const flow = new Flow("numbers", {}, () => ({ doubled: double(extract()) }));
 * const run = await flow.run();
 * console.log(run.state, run.outputs.doubled); // Success [ 2, 4, 6 ]
 */

export { Environment, type EnvironmentOptions } from "./environment/environment.js";
export { LocalEnvironment, type LocalEnvironmentOptions } from "./environment/local.js";
export {
  FlowCycleError,
  FlowDefinitionError,
  isTernError,
  NotFoundError,
  ParameterError,
  SkipSignal,
  skip,
  TaskTimeoutError,
  TernError,
  type TernErrorCode,
} from "./errors.js";
export { Flow, type FlowOptions, type FlowOutputs, type FlowRunResult, type OutputValues } from "./flow/flow.js";
export { type ParameterOptions, parameter } from "./flow/parameter.js";
export { type Input, type Inputs, type Ref, type Unmapped, unmapped } from "./flow/ref.js";
export { task } from "./flow/task.js";
export {
  type MapInput,
  type MapInputs,
  type Task,
  type TaskArgs,
  type TaskContext,
  type TaskFunction,
  type TaskOptions,
  TRIGGERS,
  type TriggerName,
} from "./flow/task-types.js";
export { type RegisterOptions, type RegisterResult, registerFlow } from "./register.js";
export type { RunOptions, TaskRun, TaskRunError } from "./runner/engine.js";
export { ConcurrentExecutor, type ConcurrentExecutorOptions, type Executor, LocalExecutor } from "./runner/executor.js";
export type { LogLevel, LogRecord, TaskLogger } from "./runner/logger.js";
export { type FlowRunState, isFailed, isFinished, isSuccessful, type TaskRunState } from "./runner/states.js";
export type {
  CatchUp,
  CronScheduleInput,
  IntervalScheduleInput,
  ScheduleInput,
  ScheduleSpec,
} from "./schedule/definition.js";
export { LocalStorage, type LocalStorageOptions, MemoryStorage, type MemoryStorageOptions } from "./storage/local.js";
export { Storage, type StorageOptions } from "./storage/storage.js";
