/**
 * RunTask in the fake ECS: what ECS checks before it launches (cluster, task definition, launch
 * type and capacity providers, network configuration, overrides, tags, the vCPU quota, Fargate's
 * launch rate), idempotency by client token, and the tasks it creates.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type {
  Container,
  ContainerDefinition,
  ContainerOverride,
  Failure,
  RunTaskRequest,
  Tag,
  Task,
  TaskDefinition,
} from "@aws-sdk/client-ecs";
import type { ClientTokens } from "./client-tokens.js";
import type { FakeEcsClock } from "./clock.js";
import type { Clusters } from "./clusters.js";
import { ECS_MESSAGES, EcsError, FAKE_ECS_ACCOUNT_ID } from "./errors.js";
import type { Tasks } from "./lifecycle.js";
import type { TaskDefinitions } from "./task-definitions.js";
import { render, type TaskRecord } from "./task-record.js";
import type { Throttling } from "./throttle.js";
import type { FakeEcsRunner, LaunchOutcome, OperationHandlers, RunTaskFailure } from "./types.js";
import {
  CLIENT_TOKEN_PATTERN,
  MAX_CONTAINER_OVERRIDES_CHARS,
  MAX_TASKS_PER_RUN,
  pairsToRecord,
  pickCapacityProvider,
  resolvePlatformVersion,
  STARTED_BY_PATTERN,
  validateTags,
} from "./validate.js";

/** What RunTask works with. */
export interface RunTaskDeps {
  readonly region: string;
  readonly clock: FakeEcsClock;
  readonly runner: FakeEcsRunner | undefined;
  readonly clusters: Clusters;
  readonly definitions: TaskDefinitions;
  readonly tasks: Tasks;
  readonly clientTokens: ClientTokens;
  readonly throttling: Throttling;
}

/** An account's Fargate vCPU quota and how a RunTask past it is refused. */
export interface VcpuQuota {
  readonly vcpus: number;
  readonly answer: "failure" | "error";
}

export class RunTask {
  /** Injected: the next RunTask calls (one per entry) answer with this failure and launch nothing. */
  readonly failures: RunTaskFailure[] = [];
  /** Injected: the next launched tasks (one per entry) end so. */
  readonly outcomes: LaunchOutcome[] = [];
  vcpuQuota: VcpuQuota | undefined;

  constructor(private readonly deps: RunTaskDeps) {}

  /** The ECS operations this part serves. */
  readonly operations = { RunTask: (input) => this.run(input as RunTaskRequest) } satisfies OperationHandlers;

  run(input: RunTaskRequest): unknown {
    const cluster = this.deps.clusters.resolve(input.cluster);
    const reference = input.taskDefinition;
    if (typeof reference !== "string" || reference === "") {
      throw new EcsError("ClientException", "TaskDefinition can not be blank.");
    }
    const token = input.clientToken;
    if (token !== undefined && !CLIENT_TOKEN_PATTERN.test(token)) {
      throw new EcsError(
        "InvalidParameterException",
        `clientToken must be 1-64 characters in the range 33-126 (got ${token.length} characters).`,
      );
    }
    const fingerprint = JSON.stringify({ ...input, clientToken: undefined });
    // A token belongs to its cluster: the same token in another cluster is another launch.
    const earlier = token === undefined ? undefined : this.deps.clientTokens.get(cluster, token);
    if (earlier !== undefined) {
      if (earlier.fingerprint !== fingerprint) {
        throw new EcsError(
          "ConflictException",
          "The RunTask request could not be processed due to conflicts. The provided clientToken is already in use with a different RunTask request.",
          { resourceIds: [...earlier.taskArns] },
        );
      }
      const tasks = earlier.taskArns.flatMap((arn) => {
        const record = this.deps.tasks.launched.find((candidate) => candidate.task.taskArn === arn);
        return record === undefined ? [] : [render(record, true)];
      });
      return { tasks, failures: [] };
    }

    const count = input.count ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > MAX_TASKS_PER_RUN) {
      throw new EcsError(
        "InvalidParameterException",
        `count must be between 1 and ${MAX_TASKS_PER_RUN} (got ${count}).`,
      );
    }
    if (input.launchType !== undefined && input.capacityProviderStrategy !== undefined) {
      throw new EcsError(
        "InvalidParameterException",
        "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
      );
    }
    const definitionRecord = this.deps.definitions.find(reference);
    if (definitionRecord === undefined) throw new EcsError("ClientException", ECS_MESSAGES.taskDefinitionNotFound);
    const definition = definitionRecord.definition;
    if (definition.status !== "ACTIVE") throw new EcsError("ClientException", "TaskDefinition is inactive");

    const associated = this.deps.clusters.providers(cluster);
    for (const item of input.capacityProviderStrategy ?? []) {
      if (item.capacityProvider !== undefined && !associated.has(item.capacityProvider)) {
        throw new EcsError("InvalidParameterException", ECS_MESSAGES.capacityProviderNotAssociated);
      }
    }
    const capacityProvider = pickCapacityProvider(input.capacityProviderStrategy);
    const launchType =
      input.launchType ??
      (capacityProvider === undefined || !capacityProvider.startsWith("FARGATE") ? "EC2" : "FARGATE");
    if (!definition.compatibilities?.includes(launchType as "EC2" | "FARGATE")) {
      throw new EcsError("InvalidParameterException", `Task definition does not support launch_type ${launchType}.`);
    }
    const awsvpc = definition.networkMode === "awsvpc";
    const vpc = input.networkConfiguration?.awsvpcConfiguration;
    if (awsvpc && vpc === undefined) {
      throw new EcsError(
        "InvalidParameterException",
        "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
      );
    }
    if (awsvpc && (vpc?.subnets === undefined || vpc.subnets.length === 0)) {
      throw new EcsError("InvalidParameterException", "subnets can not be empty.");
    }
    if (!awsvpc && input.networkConfiguration !== undefined) {
      throw new EcsError(
        "InvalidParameterException",
        "Network Configuration is not valid for the given networkMode of this task definition.",
      );
    }
    const containerOverrides = input.overrides?.containerOverrides ?? [];
    if (JSON.stringify(containerOverrides).length > MAX_CONTAINER_OVERRIDES_CHARS) {
      throw new EcsError("InvalidParameterException", ECS_MESSAGES.containerOverridesTooLong);
    }
    for (const override of containerOverrides) {
      if (!definition.containerDefinitions?.some((container) => container.name === override.name)) {
        throw new EcsError(
          "InvalidParameterException",
          `Override for container named ${override.name} is not a container in the TaskDefinition.`,
        );
      }
    }
    if (input.startedBy !== undefined && !STARTED_BY_PATTERN.test(input.startedBy)) {
      throw new EcsError(
        "InvalidParameterException",
        `startedBy allows up to 128 letters, numbers, hyphens, forward slashes and underscores (got "${input.startedBy}").`,
      );
    }
    const requestTags = validateTags(input.tags);

    const injectedFailure = this.failures.shift();
    if (injectedFailure !== undefined) return { tasks: [], failures: [{ ...injectedFailure } satisfies Failure] };

    const fargate = launchType === "FARGATE";
    const vcpusEach = fargate ? Number(input.overrides?.cpu ?? definition.cpu ?? 0) / 1024 : 0;
    if (this.vcpuQuota !== undefined && fargate) {
      const inUse = this.deps.tasks.vcpusInUse();
      if (inUse + vcpusEach * count > this.vcpuQuota.vcpus) {
        if (this.vcpuQuota.answer === "error") throw new EcsError("ClientException", ECS_MESSAGES.vcpuLimit);
        return { tasks: [], failures: [{ reason: ECS_MESSAGES.vcpuLimit } satisfies Failure] };
      }
    }
    // Fargate's task-launch rate: each task takes a token, all or none.
    if (fargate) this.deps.throttling.takeFargateLaunches(count);

    const tags = [
      ...(input.propagateTags === "TASK_DEFINITION" ? definitionRecord.tags : []),
      ...requestTags,
      ...(input.enableECSManagedTags ? [{ key: "aws:ecs:clusterName", value: cluster }] : []),
    ];
    const records = Array.from({ length: count }, () =>
      this.create({ input, cluster, definition, launchType, capacityProvider, awsvpc, tags, vcpus: vcpusEach }),
    );
    if (token !== undefined) {
      this.deps.clientTokens.remember(
        cluster,
        token,
        fingerprint,
        records.map((record) => record.task.taskArn ?? ""),
      );
    }
    for (const record of records) this.deps.tasks.start(record);
    return { tasks: records.map((record) => render(record, true)), failures: [] };
  }

  private create(spec: {
    readonly input: RunTaskRequest;
    readonly cluster: string;
    readonly definition: TaskDefinition;
    readonly launchType: string;
    readonly capacityProvider: string | undefined;
    readonly awsvpc: boolean;
    readonly tags: Tag[];
    readonly vcpus: number;
  }): TaskRecord {
    const { input, cluster, definition, launchType } = spec;
    const id = randomBytes(16).toString("hex");
    const taskArn = `arn:aws:ecs:${this.deps.region}:${FAKE_ECS_ACCOUNT_ID}:task/${cluster}/${id}`;
    const definitions = definition.containerDefinitions ?? [];
    const main = definitions.find((container) => container.essential !== false) ?? definitions[0];
    const containerOverrides = input.overrides?.containerOverrides ?? [];
    const override = containerOverrides.find((candidate) => candidate.name === main?.name);
    const fargate = launchType === "FARGATE";
    const containers: Container[] = definitions.map((container) => ({
      containerArn: `arn:aws:ecs:${this.deps.region}:${FAKE_ECS_ACCOUNT_ID}:container/${cluster}/${id}/${randomUUID()}`,
      taskArn,
      name: container.name,
      image: container.image,
      lastStatus: "PENDING",
      networkInterfaces: [],
      cpu: String(container.cpu ?? 0),
      ...(container.memory === undefined ? {} : { memory: String(container.memory) }),
    }));
    const task: Task = {
      taskArn,
      clusterArn: this.deps.clusters.arn(cluster),
      taskDefinitionArn: definition.taskDefinitionArn,
      availabilityZone: `${this.deps.region}a`,
      containers,
      cpu: input.overrides?.cpu ?? definition.cpu,
      memory: input.overrides?.memory ?? definition.memory,
      createdAt: new Date(),
      desiredStatus: "RUNNING",
      lastStatus: spec.awsvpc ? "PROVISIONING" : "PENDING",
      enableExecuteCommand: input.enableExecuteCommand ?? false,
      group: input.group ?? `family:${definition.family}`,
      launchType: launchType as Task["launchType"],
      capacityProviderName: spec.capacityProvider,
      platformVersion: fargate ? resolvePlatformVersion(input.platformVersion) : input.platformVersion,
      platformFamily: fargate ? "Linux" : undefined,
      overrides: {
        ...input.overrides,
        containerOverrides,
        inferenceAcceleratorOverrides: input.overrides?.inferenceAcceleratorOverrides ?? [],
      },
      startedBy: input.startedBy,
      tags: spec.tags.map((tag) => ({ ...tag })),
      version: 1,
    };
    const record: TaskRecord = {
      id,
      cluster,
      task,
      definition,
      mainContainer: main?.name ?? "",
      awsvpc: spec.awsvpc,
      command: main === undefined ? undefined : containerCommand(main, override, this.deps.runner),
      environment: {
        AWS_REGION: this.deps.region,
        AWS_DEFAULT_REGION: this.deps.region,
        AWS_EXECUTION_ENV: fargate ? "AWS_ECS_FARGATE" : "AWS_ECS_EC2",
        ...this.deps.runner?.env,
        ...pairsToRecord(main?.environment),
        ...pairsToRecord(override?.environment),
      },
      outcome: this.outcomes.shift(),
      output: [],
      timers: new Set(),
      finished: false,
      vcpus: spec.vcpus,
      launchedAtClockMs: this.deps.clock.now(),
    };
    this.deps.tasks.add(record);
    return record;
  }
}

/**
 * The container's argv (entryPoint + command), with a leading "tern" replaced by the runner's
 * command and a leading "node" by this process's Node (a stock Node image's `node`).
 */
function containerCommand(
  container: ContainerDefinition,
  override: ContainerOverride | undefined,
  runner: FakeEcsRunner | undefined,
): readonly string[] | undefined {
  const argv = [...(container.entryPoint ?? []), ...(override?.command ?? container.command ?? [])];
  if (argv.length === 0) return undefined;
  if (argv[0] === "tern" && runner !== undefined) return [...runner.command, ...argv.slice(1)];
  if (argv[0] === "node") return [process.execPath, ...argv.slice(1)];
  return argv;
}
