/**
 * The fake ECS's task definitions: RegisterTaskDefinition, DescribeTaskDefinition,
 * ListTaskDefinitions and DeregisterTaskDefinition, with the revisions of each family.
 */
import type {
  DeregisterTaskDefinitionRequest,
  DescribeTaskDefinitionRequest,
  ListTaskDefinitionsRequest,
  RegisterTaskDefinitionRequest,
  Tag,
  TaskDefinition,
} from "@aws-sdk/client-ecs";
import { ECS_MESSAGES, EcsError, FAKE_ECS_ACCOUNT_ID } from "./errors.js";
import type { OperationHandlers } from "./types.js";
import {
  FAMILY_PATTERN,
  normaliseCpu,
  normaliseMemory,
  paginate,
  requireString,
  validateFargate,
  validateTags,
  withContainerDefaults,
} from "./validate.js";

/** A registered revision and the tags it was registered with. */
export interface TaskDefinitionRecord {
  readonly definition: TaskDefinition;
  readonly tags: Tag[];
}

export class TaskDefinitions {
  private readonly families = new Map<string, TaskDefinitionRecord[]>();
  /** How many of the next registrations fail with ECS's concurrent-registration ClientException. */
  private failures = 0;

  constructor(private readonly region: string) {}

  /** The ECS operations this part serves. */
  readonly operations = {
    RegisterTaskDefinition: (input) => this.register(input as RegisterTaskDefinitionRequest),
    DescribeTaskDefinition: (input) => this.describe(input as DescribeTaskDefinitionRequest),
    ListTaskDefinitions: (input) => this.list(input as ListTaskDefinitionsRequest),
    DeregisterTaskDefinition: (input) => this.deregister(input as DeregisterTaskDefinitionRequest),
  } satisfies OperationHandlers;

  /** The next `count` RegisterTaskDefinition calls fail. */
  failNext(count: number): void {
    this.failures += count;
  }

  /** Every registered revision (ACTIVE and INACTIVE), by family then revision. */
  all(family?: string): readonly TaskDefinition[] {
    return [...this.families.entries()]
      .filter(([name]) => family === undefined || name === family)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([, records]) => records.map((record) => structuredClone(record.definition)));
  }

  register(input: RegisterTaskDefinitionRequest): unknown {
    const family = input.family;
    if (typeof family !== "string" || family === "") throw new EcsError("ClientException", "Family can not be blank.");
    if (!FAMILY_PATTERN.test(family)) {
      throw new EcsError(
        "ClientException",
        `Family contains invalid characters (got "${family}"): use 1-255 letters, digits, hyphens and underscores.`,
      );
    }
    const containers = input.containerDefinitions;
    if (!Array.isArray(containers) || containers.length === 0) {
      throw new EcsError("ClientException", "Container list cannot be empty.");
    }
    const names = new Set<string>();
    for (const container of containers) {
      if (!container.name) throw new EcsError("ClientException", "Container.name should not be null or empty.");
      if (!container.image) throw new EcsError("ClientException", "Container.image should not be null or empty.");
      if (names.has(container.name)) {
        throw new EcsError("ClientException", `Container names must be unique; "${container.name}" appears twice.`);
      }
      names.add(container.name);
    }
    if (!containers.some((container) => container.essential !== false)) {
      throw new EcsError("ClientException", "Task definition must have at least one essential container.");
    }
    for (const field of ["cpu", "memory"] as const) {
      if (input[field] !== undefined && typeof input[field] !== "string") {
        throw new EcsError("ClientException", `${field} must be a string such as "256" (got ${input[field]}).`);
      }
    }
    if (input.networkMode !== undefined && !["bridge", "host", "awsvpc", "none"].includes(input.networkMode)) {
      throw new EcsError("ClientException", `Invalid networkMode "${input.networkMode}".`);
    }
    const cpu = normaliseCpu(input.cpu);
    const memory = normaliseMemory(input.memory);
    const fargate = input.requiresCompatibilities?.includes("FARGATE") ?? false;
    if (fargate) validateFargate(input.networkMode, cpu, memory);
    const tags = validateTags(input.tags);
    if (this.failures > 0) {
      this.failures -= 1;
      throw new EcsError("ClientException", ECS_MESSAGES.concurrentRegistration);
    }

    const revisions = this.families.get(family) ?? [];
    const revision = revisions.length + 1;
    const definition: TaskDefinition = {
      taskDefinitionArn: this.taskDefinitionArn(family, revision),
      family,
      revision,
      status: "ACTIVE",
      containerDefinitions: containers.map(withContainerDefaults),
      taskRoleArn: input.taskRoleArn,
      executionRoleArn: input.executionRoleArn,
      networkMode: input.networkMode,
      volumes: input.volumes ?? [],
      placementConstraints: input.placementConstraints ?? [],
      requiresCompatibilities: input.requiresCompatibilities,
      compatibilities: fargate ? ["EC2", "FARGATE"] : ["EC2"],
      runtimePlatform: input.runtimePlatform,
      ephemeralStorage: input.ephemeralStorage,
      cpu,
      memory,
      pidMode: input.pidMode,
      ipcMode: input.ipcMode,
      registeredAt: new Date(),
      registeredBy: `arn:aws:iam::${FAKE_ECS_ACCOUNT_ID}:root`,
    };
    revisions.push({ definition, tags });
    this.families.set(family, revisions);
    return { taskDefinition: definition, tags };
  }

  describe(input: DescribeTaskDefinitionRequest): unknown {
    const record = this.find(requireString(input.taskDefinition, "taskDefinition"));
    if (record === undefined) throw new EcsError("ClientException", ECS_MESSAGES.unableToDescribeTaskDefinition);
    return {
      taskDefinition: record.definition,
      ...(input.include?.includes("TAGS") ? { tags: record.tags } : {}),
    };
  }

  list(input: ListTaskDefinitionsRequest): unknown {
    const status = input.status ?? "ACTIVE";
    // ECS's familyPrefix is "the full family name", not a prefix (API_ListTaskDefinitions).
    const arns = [...this.families.entries()]
      .filter(([family]) => input.familyPrefix === undefined || family === input.familyPrefix)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([, records]) => records.map((record) => record.definition))
      .filter((definition) => definition.status === status)
      .map((definition) => definition.taskDefinitionArn ?? "");
    if (input.sort === "DESC") arns.reverse();
    const page = paginate(arns, input.maxResults, input.nextToken);
    return { taskDefinitionArns: page.items, nextToken: page.nextToken };
  }

  deregister(input: DeregisterTaskDefinitionRequest): unknown {
    const reference = requireString(input.taskDefinition, "taskDefinition");
    if (!reference.includes(":")) {
      throw new EcsError(
        "InvalidParameterException",
        `A revision is required to deregister a task definition: give family:revision or the full ARN (got "${reference}").`,
      );
    }
    const record = this.find(reference);
    if (record === undefined) throw new EcsError("ClientException", ECS_MESSAGES.unableToDescribeTaskDefinition);
    if (record.definition.status === "ACTIVE") {
      record.definition.status = "INACTIVE";
      record.definition.deregisteredAt = new Date();
    }
    return { taskDefinition: record.definition };
  }

  /** `family` (latest ACTIVE), `family:revision` or the full ARN. */
  find(reference: string): TaskDefinitionRecord | undefined {
    const arn = /^arn:aws[a-z-]*:ecs:([^:]+):(\d{12}):task-definition\/(.+)$/.exec(reference);
    if (arn !== null && (arn[1] !== this.region || arn[2] !== FAKE_ECS_ACCOUNT_ID)) return undefined;
    const name = arn === null ? reference : (arn[3] ?? "");
    const withRevision = /^([^:]+):(\d+)$/.exec(name);
    if (withRevision === null) {
      if (arn !== null) return undefined;
      return this.families
        .get(name)
        ?.filter((record) => record.definition.status === "ACTIVE")
        .at(-1);
    }
    return this.families.get(withRevision[1] ?? "")?.[Number(withRevision[2]) - 1];
  }

  private taskDefinitionArn(family: string, revision: number): string {
    return `arn:aws:ecs:${this.region}:${FAKE_ECS_ACCOUNT_ID}:task-definition/${family}:${revision}`;
  }
}
