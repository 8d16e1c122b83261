/**
 * `@tern/env-fargate`: flow runs as ECS tasks on Fargate.
 *
 * Importing this module makes `FargateTaskEnvironment` rebuildable from a manifest (agents) and
 * registers the sweep's reconciler for runs launched as ECS tasks.
 *
 * @example
 * import { FargateTaskEnvironment } from "@tern/env-fargate";
 * new Flow("etl", { environment: new FargateTaskEnvironment({ cpu: 1024, memory: 2048 }) }, build);
 */
import {
  registerDeploymentOutputReader,
  registerDeploymentReconciler,
  registerEnvironmentType,
} from "@tern/core/plugin";
import { FargateTaskEnvironment, fargateEnvironmentFromJSON } from "./environment.js";
import { ECS_DEPLOYMENT_KIND, reconcileEcsTasks } from "./reconcile.js";
import { readTaskOutput } from "./task-output.js";

registerEnvironmentType(FargateTaskEnvironment.type, fargateEnvironmentFromJSON);
registerDeploymentReconciler(ECS_DEPLOYMENT_KIND, async () => reconcileEcsTasks);
registerDeploymentOutputReader(ECS_DEPLOYMENT_KIND, async () => readTaskOutput);

export { BOOTSTRAP, BOOTSTRAP_EXIT, bootstrapCommand } from "./bootstrap.js";
export {
  canonicalJson,
  definitionHash,
  desiredTaskDefinition,
  HASH_TAG,
  RUNNER_COMMAND,
  runnerCommand,
} from "./definition.js";
export {
  clearDefinitionCache,
  type EcsClientFactory,
  ecsClient,
  ensureTaskDefinition,
  setEcsClientFactory,
} from "./ecs.js";
export {
  clientToken,
  FargateTaskEnvironment,
  fargateEnvironmentFromJSON,
  MAX_OVERRIDES_CHARS,
  TASK_DEFINITION_ANNOTATION,
} from "./environment.js";
export {
  AWS_ID_PATTERNS,
  checkFlowImage,
  checkGuardrails,
  defaultFamily,
  ECS_ENV_SCHEMA,
  type EcsEnv,
  type EcsEnvProblem,
  type EcsVariable,
  ENVIRONMENT_DEFAULTS,
  EXTRA_KEYS,
  FARGATE_SIZES,
  type FargateCapacityProvider,
  type FargateJsonOptions,
  type FargateLogConfiguration,
  type FargateTaskEnvironmentOptions,
  FLOW_IMAGE_ARCHITECTURES,
  GUARDRAIL_VARIABLES,
  guardrailsFromEnv,
  isEcrImage,
  type LaunchGuardrails,
  overridesLength,
  parseRunnerBundle,
  presentVariables,
  type ResolvedFargateConfig,
  RUNNER_BUNDLE_PATTERN,
  readEcsEnv,
  resolveConfig,
  STACK_TAG,
  secretLooking,
  validateOptions,
} from "./options.js";
export { backoffMs, type LaunchClock, Pacer, runTaskPacer, setLaunchClock } from "./pacing.js";
export {
  presignRunnerBundle,
  RUNNER_URL_EXPIRY_SECONDS,
  type S3ClientFactory,
  setS3ClientFactory,
} from "./presign.js";
export {
  decideRun,
  diagnoseStoppedTask,
  ECS_DEPLOYMENT_KIND,
  type EcsDeployment,
  ecsDeployment,
  explainStopCode,
  MISSING_GRACE_MS,
  type RunVerdict,
  reconcileEcsTasks,
  STOP_CODE_EXPLANATIONS,
  startupFailure,
  type TaskDiagnosis,
  taskLogStream,
} from "./reconcile.js";
export { type LogsClientFactory, readTaskOutput, setLogsClientFactory } from "./task-output.js";
