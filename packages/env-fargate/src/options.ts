/**
 * The Fargate environment's options: their types, the schema that checks them, the secret scan,
 * the AWS id patterns, the `TERN_ECS_*` variables the agent's environment supplies defaults and
 * guardrails with, and the resolution of a launch's configuration. Each lives in `options/`.
 */
export {
  AWS_ID_PATTERNS,
  parseRunnerBundle,
  RUNNER_BUNDLE_PATTERN,
  TAG_CHARACTERS,
} from "./options/aws-ids.js";
export {
  ECS_ENV_SCHEMA,
  type EcsEnv,
  type EcsEnvProblem,
  type EcsVariable,
  ENVIRONMENT_DEFAULTS,
  GUARDRAIL_VARIABLES,
  presentVariables,
  readEcsEnv,
  splitList,
} from "./options/ecs-env.js";
export { EXTRA_KEYS } from "./options/extras.js";
export { checkFlowImage, FLOW_IMAGE_ARCHITECTURES, isEcrImage } from "./options/flow-image.js";
export { checkGuardrails, guardrailsFromEnv, type LaunchGuardrails, STACK_TAG } from "./options/guardrails.js";
export { defaultFamily, resolveConfig } from "./options/resolve.js";
export { FARGATE_SIZES, validateOptions } from "./options/schema.js";
export { secretLooking } from "./options/secret-scan.js";
export type {
  FargateCapacityProvider,
  FargateJsonOptions,
  FargateLogConfiguration,
  FargateTaskEnvironmentOptions,
  ResolvedFargateConfig,
} from "./options/types.js";

/**
 * The length ECS measures `RunTask`'s 8,192-character limit on: the JSON of the whole `overrides`
 * object (container overrides, and any task-level override with them), not only
 * `containerOverrides`.
 */
export function overridesLength(overrides: unknown): number {
  return JSON.stringify(overrides ?? {}).length;
}
