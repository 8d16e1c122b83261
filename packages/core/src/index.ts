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
export {
  FlowCycleError,
  FlowDefinitionError,
  ParameterError,
  SkipSignal,
  skip,
  TaskTimeoutError,
  TernError,
} from "./errors.js";
export {
  type BindInput,
  Flow,
  type FlowEdgeInfo,
  type FlowOptions,
  type FlowOutputs,
  type FlowRunResult,
  type FlowTaskInfo,
  type OutputValues,
} from "./flow/flow.js";
export { type ParameterOptions, parameter } from "./flow/parameter.js";
export {
  type Input,
  type Inputs,
  isRef,
  type ParameterDeclaration,
  type Ref,
  type Unmapped,
  unmapped,
} from "./flow/ref.js";
export {
  type AnyTask,
  isTask,
  type MapInput,
  type MapInputs,
  type ResolvedTaskOptions,
  type Task,
  type TaskArgs,
  type TaskContext,
  type TaskFunction,
  type TaskOptions,
  TRIGGERS,
  type TriggerName,
  task,
} from "./flow/task.js";
export type { RunOptions, TaskRun, TaskRunError } from "./runner/engine.js";
export {
  ConcurrentExecutor,
  type ConcurrentExecutorOptions,
  type Executor,
  type ExecutorConfig,
  executorFromJSON,
  LocalExecutor,
} from "./runner/executor.js";
export type { LogLevel, LogRecord, TaskLogger } from "./runner/logger.js";
export {
  deserializeValue,
  type JsonValue,
  type SerializedFlowRun,
  type SerializedLogRecord,
  type SerializedTaskRun,
  type SerializedValue,
  serializeRun,
  serializeTaskRun,
  toSerializedValue,
} from "./runner/serialize.js";
export { type FlowRunState, isFailed, isFinished, isSuccessful, type TaskRunState } from "./runner/states.js";
