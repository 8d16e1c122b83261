import { EnvironmentError, type FlowImage } from "@tern/core/plugin";
import { parseRunnerBundle } from "./aws-ids.js";
import { type EcsVariable, ENVIRONMENT_DEFAULTS, GUARDRAIL_VARIABLES, presentVariables, splitList } from "./ecs-env.js";
import { checkFlowImage, isEcrImage } from "./flow-image.js";
import { checkGuardrails, ecsVariables, guardrailsFromEnv, STACK_TAG } from "./guardrails.js";
import { optionError, show, WHERE } from "./option-error.js";
import { validateOptions } from "./schema.js";
import type { FargateJsonOptions, FargateTaskEnvironmentOptions, ResolvedFargateConfig } from "./types.js";

/**
 * The resolution of a launch's configuration: the options, with the defaults the agent's
 * environment supplies (`TERN_ECS_*`, `TERN_RUNNER_*`, `TERN_LOG_GROUP`, `AWS_REGION`), checked
 * against the stack's guardrails.
 */

/** A flow name as a task definition family: `tern-<slug>`. */
export function defaultFamily(flow: string): string {
  const slug = flow
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return `tern-${slug === "" ? "flow" : slug}`.slice(0, 255);
}

/** The variables whose values become options: checked as the options they stand for. */
const OPTION_VARIABLES = new Set<string>(Object.values(ENVIRONMENT_DEFAULTS));
/** The other variables of the `TERN_ECS_*` schema that a launch reads. */
const LAUNCH_VARIABLES: readonly EcsVariable[] = [
  ENVIRONMENT_DEFAULTS.logGroup,
  GUARDRAIL_VARIABLES.imageArchitectures,
  GUARDRAIL_VARIABLES.stackTag,
  GUARDRAIL_VARIABLES.projectTaskRoles,
];

/**
 * The defaults of the options not given, from the agent's environment. With a flow image, the
 * agent's runner image is not used, so not read (nor checked).
 */
function defaultsFromEnv(
  options: FargateJsonOptions,
  raw: Readonly<Record<string, string>>,
  projectRole: string | undefined,
  flowImage: FlowImage | undefined,
): Record<string, unknown> {
  const defaults: Record<string, unknown> = {};
  for (const key of ["subnets", "securityGroups"] as const) {
    const value = raw[ENVIRONMENT_DEFAULTS[key]];
    if (options[key] === undefined && value !== undefined) defaults[key] = splitList(value);
  }
  // A project with its own task role (the stack's per-project option) runs with it by default.
  if (options.taskRoleArn === undefined && projectRole !== undefined) defaults.taskRoleArn = projectRole;
  for (const key of ["cluster", "taskRoleArn", "executionRoleArn", "image"] as const) {
    if (key === "image" && flowImage !== undefined) continue;
    const value = raw[ENVIRONMENT_DEFAULTS[key]];
    if (!(key in defaults) && options[key] === undefined && value !== undefined) defaults[key] = value;
  }
  // The bundle and its sha256 come as a pair: from the options, or both from the environment.
  if (options.runnerBundle === undefined && options.runnerBundleSha256 === undefined) {
    const bundle = raw[ENVIRONMENT_DEFAULTS.runnerBundle];
    const sha256 = raw[ENVIRONMENT_DEFAULTS.runnerBundleSha256];
    if ((bundle === undefined) !== (sha256 === undefined)) {
      const [set, unset] =
        bundle === undefined
          ? [ENVIRONMENT_DEFAULTS.runnerBundleSha256, ENVIRONMENT_DEFAULTS.runnerBundle]
          : [ENVIRONMENT_DEFAULTS.runnerBundle, ENVIRONMENT_DEFAULTS.runnerBundleSha256];
      throw new EnvironmentError(
        `${WHERE}: ${set} is set where the agent runs but ${unset} is not: set both (the CDK stack sets both), or neither to run tern execute from the image.`,
      );
    }
    if (bundle !== undefined) Object.assign(defaults, { runnerBundle: bundle, runnerBundleSha256: sha256 });
  }
  const region = raw.AWS_REGION ?? raw.AWS_DEFAULT_REGION;
  if (options.region === undefined && region !== undefined) defaults.region = region;
  return defaults;
}

/** The options with their defaults, checked together; a problem names the variables read. */
function withDefaults(options: FargateJsonOptions, defaults: Record<string, unknown>): FargateJsonOptions {
  try {
    return validateOptions({ ...options, ...defaults } as FargateTaskEnvironmentOptions);
  } catch (error) {
    const names = Object.keys(defaults)
      .map((k) => (k === "region" ? "AWS_REGION" : ENVIRONMENT_DEFAULTS[k as keyof typeof ENVIRONMENT_DEFAULTS]))
      .join(", ");
    throw new EnvironmentError(`${(error as Error).message}${names === "" ? "" : ` (defaults read from ${names})`}`, {
      cause: error,
    });
  }
}

/**
 * Fills the defaults from the agent's environment variables and checks that everything a launch
 * needs is there, naming the option and the variable for whatever is missing. With `flowImage`
 * (the flow version's storage keeps it in an image: `Storage.containerImage`), the task runs that
 * image instead of the runner image, once it is checked against the task (`checkFlowImage`).
 */
export function resolveConfig(
  options: FargateJsonOptions,
  flow: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  context: { readonly project?: string; readonly flowImage?: FlowImage } = {},
): ResolvedFargateConfig {
  const { flowImage } = context;
  // Variables that stand for options go through the options' checks (the message names both);
  // the others through the TERN_ECS_* schema.
  const raw = presentVariables([...OPTION_VARIABLES, "AWS_REGION", "AWS_DEFAULT_REGION"], env);
  const values = ecsVariables(env, LAUNCH_VARIABLES);
  const projectRole = context.project === undefined ? undefined : values.TERN_ECS_PROJECT_TASK_ROLES?.[context.project];
  const merged = withDefaults(options, defaultsFromEnv(options, raw, projectRole, flowImage));
  // The agent's image: its architectures are known when the stack built or chose it.
  const architectures = values.TERN_RUNNER_IMAGE_ARCHITECTURES;
  const architecture = merged.runtimePlatform?.cpuArchitecture ?? "X86_64";
  // The flow's own image, when it has one, is what runs: its platform is known exactly.
  if (flowImage !== undefined) checkFlowImage(flowImage, architecture);
  else if (options.image === undefined && architectures !== undefined && !architectures.includes(architecture)) {
    throw optionError(
      "runtimePlatform",
      `${architecture}, but the agent's runner image ${show(merged.image)} (${ENVIRONMENT_DEFAULTS.image}) has ${architectures.join(" and ")} only (${GUARDRAIL_VARIABLES.imageArchitectures}): use cpuArchitecture ${show(architectures[0])}, or an image with a ${architecture} variant.`,
    );
  }
  const missing = (option: string, variable: string, why: string) =>
    new EnvironmentError(
      `${WHERE}: no ${option}: ${why}. Pass ${option} in the environment's options, or set ${variable} where the agent runs (the CDK stack sets it).`,
    );
  // The image the task runs: the flow's own, else the runner image.
  const image = flowImage?.reference ?? merged.image;
  if (image === undefined)
    throw missing(
      "image",
      ENVIRONMENT_DEFAULTS.image,
      "the runner image is a stock Node image (with a runner bundle) or one that holds the tern CLI",
    );
  if (merged.subnets === undefined)
    throw missing("subnets", ENVIRONMENT_DEFAULTS.subnets, "Fargate tasks need a subnet for their network interface");
  if (merged.region === undefined) throw missing("region", "AWS_REGION", "ECS calls and logs need a region");
  if (merged.securityGroups === undefined || merged.securityGroups.length === 0) {
    throw missing(
      "securityGroups",
      ENVIRONMENT_DEFAULTS.securityGroups,
      "tasks get explicit security groups, never the VPC's default",
    );
  }
  if (merged.taskRoleArn === undefined) {
    throw missing(
      "taskRoleArn",
      ENVIRONMENT_DEFAULTS.taskRoleArn,
      "the runner reads its run from the backend and its flow from storage with this role's credentials",
    );
  }
  const logOption = merged.logConfiguration;
  let log: ResolvedFargateConfig["log"];
  if (logOption !== "none") {
    const group = logOption?.group ?? values.TERN_LOG_GROUP;
    if (group === undefined) {
      throw new EnvironmentError(
        `${WHERE}: no log group for the runner's output: pass logConfiguration: { group: "/tern/runs" }, set ${ENVIRONMENT_DEFAULTS.logGroup} where the agent runs (the CDK stack sets it), or pass logConfiguration: "none".`,
      );
    }
    log = { group, streamPrefix: logOption?.streamPrefix ?? "tern" };
  }
  if (flowImage !== undefined && isEcrImage(image) && merged.executionRoleArn === undefined) {
    throw missing(
      "executionRoleArn",
      ENVIRONMENT_DEFAULTS.executionRoleArn,
      `the flow's image ${image} is in Amazon ECR, and ECS pulls ECR images with the task's execution role (which needs ecr:GetAuthorizationToken, and ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the flow images' repository)`,
    );
  }
  const needsExecutionRole = log !== undefined || Object.keys(merged.secrets ?? {}).length > 0 || isEcrImage(image);
  if (needsExecutionRole && merged.executionRoleArn === undefined) {
    throw missing(
      "executionRoleArn",
      ENVIRONMENT_DEFAULTS.executionRoleArn,
      "ECS needs it to pull an ECR image, write awslogs and read secrets",
    );
  }
  const stackTag = values.TERN_ECS_STACK_TAG;
  const resolved: ResolvedFargateConfig = {
    family: merged.family ?? defaultFamily(flow),
    cluster: merged.cluster ?? "default",
    region: merged.region,
    image,
    ...(flowImage === undefined ? {} : { flowImage: { reference: flowImage.reference, platform: flowImage.platform } }),
    ...(merged.runnerBundle === undefined || merged.runnerBundle === "none"
      ? {}
      : {
          runner: {
            ...(parseRunnerBundle(merged.runnerBundle) as { bucket: string; key: string }),
            sha256: merged.runnerBundleSha256 as string,
          },
        }),
    cpu: merged.cpu ?? 512,
    memory: merged.memory ?? 1024,
    subnets: merged.subnets,
    securityGroups: merged.securityGroups,
    assignPublicIp: merged.assignPublicIp ?? false,
    ...(merged.taskRoleArn === undefined ? {} : { taskRoleArn: merged.taskRoleArn }),
    ...(merged.executionRoleArn === undefined ? {} : { executionRoleArn: merged.executionRoleArn }),
    containerName: merged.containerName ?? "tern-runner",
    environment: merged.environment ?? {},
    secrets: merged.secrets ?? {},
    ...(log === undefined ? {} : { log }),
    ...(merged.capacityProviderStrategy === undefined
      ? { launchType: "FARGATE" as const }
      : { capacityProviderStrategy: merged.capacityProviderStrategy }),
    platformVersion: merged.platformVersion ?? "LATEST",
    cpuArchitecture: merged.runtimePlatform?.cpuArchitecture ?? "X86_64",
    ...(merged.ephemeralStorageGiB === undefined ? {} : { ephemeralStorageGiB: merged.ephemeralStorageGiB }),
    // The stack's tag (a valid tag value: the schema checks it): IAM lets the agent register task definitions only with it.
    tags: { ...merged.tags, ...(stackTag === undefined ? {} : { [STACK_TAG]: stackTag }) },
    maxRelaunches: merged.maxRelaunches ?? 2,
    launchAttempts: merged.launchAttempts ?? 5,
    launchBackoffMs: merged.launchBackoffMs ?? 1000,
    extraTaskDefinition: merged.extraTaskDefinition ?? {},
    extraContainerDefinition: merged.extraContainerDefinition ?? {},
    extraRunTask: merged.extraRunTask ?? {},
  };
  checkGuardrails(resolved, guardrailsFromEnv(env, context.project));
  return resolved;
}
