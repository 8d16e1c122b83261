import { createHash } from "node:crypto";
import { bootstrapCommand } from "./bootstrap.js";
import type { ResolvedFargateConfig } from "./options.js";

/** The tag that carries a task definition revision's content hash. */
export const HASH_TAG = "tern:definition-hash";

/**
 * The command of the runner container in an image that holds tern: the run comes from
 * `TERN_RUN_ID` in the overrides. With a runner bundle, the command is the bootstrap instead.
 */
export const RUNNER_COMMAND: readonly string[] = ["tern", "execute"];

/** A task definition as `RegisterTaskDefinition` takes it (without tags), in JSON. */
export type TaskDefinitionInput = Record<string, unknown> & {
  readonly family: string;
  readonly containerDefinitions: ReadonlyArray<Record<string, unknown>>;
};

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** The runner container's command for a configuration: the bootstrap with a runner bundle, else `tern execute`. */
export function runnerCommand(config: Pick<ResolvedFargateConfig, "runner">): string[] {
  return config.runner === undefined ? [...RUNNER_COMMAND] : bootstrapCommand();
}

/**
 * The task definition a configuration asks for: a pure function of it, normalized (variables
 * and secrets sorted by name, defaults written out), so equal configurations give equal JSON.
 * With a runner bundle, its sha256 is in the container's environment (TERN_RUNNER_SHA256): a new
 * bundle is a new revision, and a task only ever runs the bundle its revision names.
 */
export function desiredTaskDefinition(config: ResolvedFargateConfig): TaskDefinitionInput {
  const environment: Record<string, string> = { ...config.environment };
  if (config.runner !== undefined) environment.TERN_RUNNER_SHA256 = config.runner.sha256;
  const container: Record<string, unknown> = {
    ...config.extraContainerDefinition,
    name: config.containerName,
    image: config.image,
    essential: true,
    command: runnerCommand(config),
    environment: Object.entries(environment)
      .map(([name, value]) => ({ name, value }))
      .sort(byName),
    secrets: Object.entries(config.secrets)
      .map(([name, valueFrom]) => ({ name, valueFrom }))
      .sort(byName),
    // An init process forwards StopTask's SIGTERM to the runner and reaps what the flow spawns.
    linuxParameters: { initProcessEnabled: true },
  };
  if (config.log !== undefined) {
    container.logConfiguration = {
      logDriver: "awslogs",
      options: {
        "awslogs-group": config.log.group,
        "awslogs-region": config.region,
        "awslogs-stream-prefix": config.log.streamPrefix,
      },
    };
  }
  return {
    ...config.extraTaskDefinition,
    family: config.family,
    requiresCompatibilities: ["FARGATE"],
    networkMode: "awsvpc",
    cpu: String(config.cpu),
    memory: String(config.memory),
    ...(config.taskRoleArn === undefined ? {} : { taskRoleArn: config.taskRoleArn }),
    ...(config.executionRoleArn === undefined ? {} : { executionRoleArn: config.executionRoleArn }),
    runtimePlatform: { cpuArchitecture: config.cpuArchitecture, operatingSystemFamily: "LINUX" },
    ...(config.ephemeralStorageGiB === undefined
      ? {}
      : { ephemeralStorage: { sizeInGiB: config.ephemeralStorageGiB } }),
    containerDefinitions: [container],
  };
}

/** JSON with object keys sorted at every level: equal values, equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The content hash of a task definition and the tags it is registered with (user tags are part
 * of the revision too): sha256 of the canonical JSON, hex.
 */
export function definitionHash(definition: TaskDefinitionInput, tags: Readonly<Record<string, string>>): string {
  return createHash("sha256").update(canonicalJson({ definition, tags })).digest("hex");
}

/** ECS's tag list from a map, sorted by key. */
export function tagList(tags: Readonly<Record<string, string>>): Array<{ key: string; value: string }> {
  return Object.entries(tags)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => ({ key, value }));
}
