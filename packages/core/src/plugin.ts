/**
 * `@tern/core/plugin`: for people who implement a storage, an environment or a backend. The
 * `Backend` and `BlobStore` contracts and their records, what an `Environment` subclass is given,
 * the type registries, manifests, bundling, serialization, one backoff, and the errors an
 * implementation throws. Flow authors need none of it (`@tern/core`).
 *
 * @example
 * import { Environment } from "@tern/core";
 * import type { Deployment, ExecuteContext } from "@tern/core/plugin";
 */

export {
  type DeploymentReconciler,
  type ReconcileDecision,
  type ReconcileResult,
  registerDeploymentReconciler,
} from "./agent/sweep.js";
export { type BackendOpener, registerBackendScheme } from "./backend/open.js";
export {
  type AdvancedSchedule,
  type AdvanceScheduleInput,
  type AgentRecord,
  type Backend,
  type ClaimInput,
  type CreateRunInput,
  checkAnnotations,
  checkLogPageInput,
  checkTransition,
  DEFAULT_LOG_PAGE_SIZE,
  environmentMatches,
  type FlowSource,
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
  type ScheduleRuns,
  type ScheduleState,
  TERMINAL_RUN_STATES,
  type TransitionInput,
  type TypedConfig,
} from "./backend/types.js";
export {
  type DeploymentOutput,
  type DeploymentOutputReader,
  type OutputLine,
  registerDeploymentOutputReader,
} from "./environment/deployment-output.js";
export {
  BUILT_IN_ENVIRONMENT_TYPES,
  checkLabels,
  type Deployment,
  EnvironmentError,
  type EnvironmentExitContext,
  type EnvironmentHookContext,
  type ExecuteContext,
  LaunchUncertainError,
  type SetupContext,
} from "./environment/environment.js";
export {
  type EnvironmentFactory,
  environmentFromJSON,
  hasEnvironmentType,
  loadEnvironmentType,
  registerEnvironmentLoader,
  registerEnvironmentType,
} from "./environment/registry.js";
export { BackendError, isRetryable, RunConflictError, type TernErrorOptions } from "./errors.js";
export type { BindInput } from "./flow/flow.js";
export {
  type CheckedParameter,
  checkParameterValues,
  type FromJsonSchema,
  type JsonSchema,
  type Mismatch,
  type ParameterSchema,
  ParameterValueError,
  readParameterText,
  type SchemaType,
  type StandardJsonSchema,
  schemaMismatch,
} from "./flow/parameter-schema.js";
export { isRef, type ParameterDeclaration } from "./flow/ref.js";
export { type AnyTask, isTask, type ResolvedTaskOptions } from "./flow/task-types.js";
export { ternHome } from "./home.js";
export type { DefaultStorageOptions, RegisterSettings, StorageOptionsByType } from "./register.js";
export { type BackoffRetryOptions, backoffMs, retryWithBackoff } from "./retry/backoff.js";
export { type ExecutorConfig, executorFromJSON } from "./runner/executor.js";
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
export { scheduleRunInputs } from "./schedule/runs.js";
export { NEVER_MS, nextTickAfter, type ScheduleChanges, scheduleChanges } from "./schedule/state.js";
export {
  BlobConflictError,
  type BlobHead,
  type BlobStore,
  checkKey,
  existingObject,
  type PutOptions,
  sha256Hex,
} from "./storage/blob-store.js";
export { BundleError, bundleFlowModule, isLoadingBundle } from "./storage/bundle.js";
export { checkSha256 } from "./storage/integrity.js";
export { LocalBlobStore } from "./storage/local-blob-store.js";
export {
  decodeManifest,
  encodeManifest,
  MANIFEST_FORMAT,
  type Manifest,
  ManifestError,
  parseManifest,
} from "./storage/manifest.js";
export { MemoryBlobStore } from "./storage/memory-blob-store.js";
export {
  checkStorageOptions,
  registerStorageOptionsSchema,
  type StorageOptionsSchema,
  storageOptionsSchema,
} from "./storage/options.js";
export {
  loadStorage,
  loadStorageType,
  registerStorageLoader,
  registerStorageType,
  type StorageFactory,
  storageFromJSON,
} from "./storage/registry.js";
export {
  type BuiltFlow,
  BundleIntegrityError,
  type FlowImage,
  flowExports,
  importFlowBundle,
  isFlow,
  type LoadedFlow,
  type LoadOptions,
  type PlannedFlow,
  type StoredManifest,
  slugify,
} from "./storage/storage.js";
