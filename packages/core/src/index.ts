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
  Agent,
  type AgentOptions,
  type DispatchOptions,
  LocalAgent,
  type LocalAgentOptions,
  type PollResult,
} from "./agent/agent.js";
export { deployFromBundle, deployRoute, type ResolvedRun, resolveRun, setupContext } from "./agent/deploy.js";
export { endOpenTaskRuns } from "./agent/end-run.js";
export { AGENT_SEEN_WINDOW_MS, type ExplainOptions, explainRun, type RunExplanation } from "./agent/explain.js";
export { type Launch, type LaunchContext, type Launcher, RemoteLauncher } from "./agent/launcher.js";
export { DEFAULT_LEASE_MS, LeaseWatch, leaseMsFromEnv, MAX_CLOCK_SKEW_MS } from "./agent/lease.js";
export { isLeaseKeeperData, type LeaseKeeperData, runLeaseKeeper } from "./agent/lease-keeper.js";
export { type ExecuteRunOptions, type ExecuteRunResult, executeRun, RUNNER_LEASE_MS } from "./agent/runner.js";
export { type ScheduledFlow, type ScheduleRunInput, scheduleRun } from "./agent/schedule.js";
export {
  type DeploymentReconciler,
  type ReconcileDecision,
  type ReconcileResult,
  registerDeploymentReconciler,
  type SweepOptions,
  type SweptRun,
  sweepRuns,
} from "./agent/sweep.js";
export { updateRun } from "./agent/update-run.js";
export { requireRun } from "./backend/lookup.js";
export { type BackendOpener, backendUrl, openBackend, registerBackendScheme } from "./backend/open.js";
export { SqliteBackend, type SqliteBackendOptions } from "./backend/sqlite.js";
export { checkSqliteDatabase, type SqliteCheckOptions, type SqliteCheckResult } from "./backend/sqlite-check.js";
export {
  type AgentRecord,
  type Backend,
  type ClaimInput,
  type CreateRunInput,
  checkAnnotations,
  checkLogPageInput,
  checkTransition,
  DEFAULT_LOG_PAGE_SIZE,
  environmentMatches,
  type FlowSummary,
  type FlowVersionInput,
  type FlowVersionRecord,
  isTerminalRunState,
  type Lease,
  type ListRunsInput,
  type LogPage,
  type LogPageInput,
  labelsMatch,
  logPages,
  lostLeaseReason,
  MAX_ANNOTATION_BYTES,
  MAX_LOG_PAGE_SIZE,
  RUN_TRANSITIONS,
  type RunLogRecord,
  type RunRecord,
  type RunState,
  type RunStateChange,
  requireEndReason,
  TERMINAL_RUN_STATES,
  type TransitionInput,
  type TypedConfig,
} from "./backend/types.js";
export {
  BUILT_IN_ENVIRONMENT_TYPES,
  checkLabels,
  type Deployment,
  Environment,
  EnvironmentError,
  type EnvironmentExitContext,
  type EnvironmentHookContext,
  type EnvironmentOptions,
  type ExecuteContext,
  LaunchUncertainError,
  type SetupContext,
} from "./environment/environment.js";
export { LocalEnvironment, type LocalEnvironmentOptions } from "./environment/local.js";
export {
  type EnvironmentFactory,
  environmentFromJSON,
  hasEnvironmentType,
  loadEnvironmentType,
  registerEnvironmentLoader,
  registerEnvironmentType,
} from "./environment/registry.js";
export {
  BackendError,
  FlowCycleError,
  FlowDefinitionError,
  isRetryable,
  isTernError,
  NotFoundError,
  ParameterError,
  RunConflictError,
  SkipSignal,
  skip,
  TaskTimeoutError,
  TernError,
  type TernErrorCode,
  type TernErrorOptions,
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
export { task } from "./flow/task.js";
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
} from "./flow/task-types.js";
export { ternHome } from "./home.js";
export {
  defaultStorage,
  type RegisterOptions,
  type RegisterResult,
  registerFlow,
  setDefaultStorageType,
} from "./register.js";
export { type BackoffRetryOptions, backoffMs, retryWithBackoff } from "./retry/backoff.js";
export type { RunOptions, TaskRun, TaskRunError } from "./runner/engine.js";
export {
  ConcurrentExecutor,
  type ConcurrentExecutorOptions,
  type Executor,
  type ExecutorConfig,
  executorFromJSON,
  LocalExecutor,
} from "./runner/executor.js";
export { formatLogLine, type LogLevel, type LogRecord, type TaskLogger } from "./runner/logger.js";
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
export {
  BlobConflictError,
  type BlobHead,
  type BlobStore,
  checkKey,
  type PutOptions,
  sha256Hex,
} from "./storage/blob-store.js";
export { BundleError, bundleFlowModule, isLoadingBundle } from "./storage/bundle.js";
export { importFlowFile } from "./storage/load-file.js";
export {
  LocalStorage,
  type LocalStorageOptions,
  MemoryStorage,
  type MemoryStorageOptions,
} from "./storage/local.js";
export { LocalBlobStore } from "./storage/local-blob-store.js";
export { decodeManifest, MANIFEST_FORMAT, type Manifest, ManifestError, parseManifest } from "./storage/manifest.js";
export { MemoryBlobStore } from "./storage/memory-blob-store.js";
export {
  loadStorage,
  registerStorageLoader,
  registerStorageType,
  type StorageFactory,
  storageFromJSON,
} from "./storage/registry.js";
export {
  type BuiltFlow,
  BundleIntegrityError,
  flowExports,
  forgetVerifiedManifests,
  isFlow,
  type LoadedFlow,
  type LoadOptions,
  type PlannedFlow,
  Storage,
  type StorageOptions,
  type StoredManifest,
  slugify,
} from "./storage/storage.js";
export { TERN_VERSION } from "./version.js";
