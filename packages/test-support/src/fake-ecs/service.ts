/**
 * A behaviour-faithful fake of Amazon ECS for tests: an HTTP server speaking ECS's awsJson1_1
 * protocol, so the real `@aws-sdk/client-ecs` talks to it (through `endpoint` or
 * `AWS_ENDPOINT_URL_ECS`), that runs each task's essential container as a local child process.
 *
 * What it models, what it does not and where each wording comes from: see test/README.md.
 *
 * @example
 * const fake = await FakeEcs.start({ runner: { command: [process.execPath] } });
 * const ecs = new ECSClient({ endpoint: fake.endpoint, region: "us-east-1", credentials });
 * // ... RegisterTaskDefinition, RunTask, DescribeTasks ...
 * await fake.close();
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type {
  Container,
  ContainerDefinition,
  ContainerOverride,
  DeregisterTaskDefinitionRequest,
  DescribeTaskDefinitionRequest,
  DescribeTasksRequest,
  Failure,
  ListTaskDefinitionsRequest,
  ListTasksRequest,
  RegisterTaskDefinitionRequest,
  RunTaskRequest,
  StopTaskRequest,
  Tag,
  Task,
  TaskDefinition,
  TaskStopCode,
} from "@aws-sdk/client-ecs";
import { ClientTokens } from "./client-tokens.js";
import { type FakeEcsClock, realClock } from "./clock.js";
import { ECS_MESSAGES, EcsError, FAKE_ECS_ACCOUNT_ID } from "./errors.js";
import { readBody, send } from "./http.js";
import { type FakeEcsThrottlingOptions, Throttling } from "./throttle.js";
import {
  type FakeEcsCall,
  type FakeEcsOperation,
  type FakeEcsOptions,
  type FakeEcsRunner,
  type FakeTask,
  isOperation,
  type LaunchOutcome,
  OPERATIONS,
  type RunTaskFailure,
  type StopCodeInjection,
} from "./types.js";
import {
  CLIENT_TOKEN_PATTERN,
  FAMILY_PATTERN,
  isRecord,
  MAX_CONTAINER_OVERRIDES_CHARS,
  MAX_DESCRIBE_TASKS,
  MAX_TASKS_PER_RUN,
  normaliseCpu,
  normaliseMemory,
  paginate,
  pairsToRecord,
  pickCapacityProvider,
  requireString,
  resolvePlatformVersion,
  STARTED_BY_PATTERN,
  signalNumber,
  TARGET_PREFIX,
  validateFargate,
  validateTags,
  withContainerDefaults,
} from "./validate.js";

interface TaskDefinitionRecord {
  readonly definition: TaskDefinition;
  readonly tags: Tag[];
}

interface TaskRecord {
  readonly id: string;
  readonly cluster: string;
  readonly task: Task;
  readonly definition: TaskDefinition;
  readonly mainContainer: string;
  readonly awsvpc: boolean;
  readonly command: readonly string[] | undefined;
  readonly environment: Readonly<Record<string, string>>;
  readonly outcome: LaunchOutcome | undefined;
  readonly output: { readonly stream: "stdout" | "stderr"; readonly text: string }[];
  readonly timers: Set<NodeJS.Timeout>;
  child?: ChildProcess;
  exited?: Promise<void>;
  /** Set by StopTask. */
  stopRequest?: { readonly reason: string; readonly stopCode: TaskStopCode };
  /** Set by an injected outcome or finishTask: how the container ends, whatever the process says. */
  forcedEnd?: { readonly exitCode: number; readonly reason: string | undefined };
  finished: boolean;
  /** When the task reached STOPPED, on the fake's clock (it is forgotten some time after). */
  stoppedAtClockMs?: number;
  /** The Fargate vCPUs it holds until it stops (0 on EC2). */
  readonly vcpus: number;
  /** When RunTask launched it, on the fake's clock. */
  readonly launchedAtClockMs: number;
}

interface TaskEnd {
  readonly stopCode: TaskStopCode;
  readonly stoppedReason: string;
  readonly exitCode?: number;
  readonly containerReason?: string;
  /** @default - the essential container */
  readonly containerName?: string;
}

/**
 * The fake ECS service. Start it with {@link FakeEcs.start}; always {@link FakeEcs.close} it, which
 * kills every child process it started.
 */
export class FakeEcs {
  /** The URL to give `ECSClient` as `endpoint` (or as `AWS_ENDPOINT_URL_ECS`). */
  readonly endpoint: string;
  readonly region: string;

  private readonly clusters: ReadonlySet<string>;
  private readonly launchMode: "process" | "none";
  private readonly halfStartDelayMs: number;
  private readonly stopTimeoutMs: number;
  private readonly runner: FakeEcsRunner | undefined;
  private readonly pullable: (image: string) => boolean;

  private readonly families = new Map<string, TaskDefinitionRecord[]>();
  /** Every task still known (stopped ones are forgotten after `stoppedTaskRetentionMs`). */
  private tasks: TaskRecord[] = [];
  /** Every task ever launched, for the test's view. */
  private readonly launched: TaskRecord[] = [];
  /** The fake's clock: client tokens, throttling buckets, forgetting stopped tasks. */
  readonly clock: FakeEcsClock;
  private readonly clientTokens: ClientTokens;
  private readonly throttling: Throttling;
  private readonly capacityProviders = new Map<string, Set<string>>();
  private readonly stoppedTaskRetentionMs: number;
  private vcpuQuota: { readonly vcpus: number; readonly answer: "failure" | "error" } | undefined;
  private readonly callCounts: Record<FakeEcsOperation, number>;
  private readonly log: FakeEcsCall[] = [];
  private readonly listeners = new Set<() => void>();
  private registrationFailures = 0;
  private lostRunTaskAnswers = 0;
  private readonly runTaskFailures: RunTaskFailure[] = [];
  private readonly launchOutcomes: LaunchOutcome[] = [];
  private closing: Promise<void> | undefined;
  private readonly killChildrenOnExit = (): void => {
    for (const record of this.launched) record.child?.kill("SIGKILL");
  };

  private constructor(
    private readonly server: Server,
    port: number,
    options: FakeEcsOptions,
  ) {
    this.endpoint = `http://127.0.0.1:${port}`;
    this.region = options.region ?? "us-east-1";
    this.clusters = new Set(["default", ...(options.clusters ?? [])]);
    this.clock = options.clock ?? realClock;
    this.clientTokens = new ClientTokens(this.clock);
    this.throttling = new Throttling(this.clock);
    if (options.throttling !== undefined && options.throttling !== false) this.throttling.configure(options.throttling);
    for (const cluster of this.clusters) {
      this.capacityProviders.set(
        cluster,
        new Set(
          options.capacityProviders?.[cluster] ?? options.defaultCapacityProviders ?? ["FARGATE", "FARGATE_SPOT"],
        ),
      );
    }
    this.stoppedTaskRetentionMs = options.stoppedTaskRetentionMs ?? 60 * 60 * 1000;
    if (options.vcpuQuota !== undefined) this.setVcpuQuota(options.vcpuQuota);
    this.launchMode = options.launch ?? "process";
    this.halfStartDelayMs = Math.max(0, options.startDelayMs ?? 50) / 2;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 2000;
    this.runner = options.runner;
    this.pullable = options.pullableImages ?? (() => true);
    this.callCounts = Object.fromEntries(OPERATIONS.map((operation) => [operation, 0])) as Record<
      FakeEcsOperation,
      number
    >;
  }

  /** Starts the server on 127.0.0.1. */
  static async start(options: FakeEcsOptions = {}): Promise<FakeEcs> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const fake = new FakeEcs(server, (server.address() as AddressInfo).port, options);
    server.on("request", (request: IncomingMessage, response: ServerResponse) => void fake.handle(request, response));
    // A test that crashes before close() must not leave children behind.
    process.on("exit", fake.killChildrenOnExit);
    return fake;
  }

  // ---------------------------------------------------------------------------------------------
  // Observability

  /** How many requests each operation received (failed ones included). */
  get calls(): Readonly<Record<FakeEcsOperation, number>> {
    return { ...this.callCounts };
  }

  /** Every request, in order, with its parsed JSON input. */
  get callLog(): readonly FakeEcsCall[] {
    return [...this.log];
  }

  /** The tasks really launched (an idempotent RunTask repeat launches none), in launch order. */
  get launchedTasks(): readonly FakeTask[] {
    return this.launched.map((record) => this.view(record));
  }

  /** When each task was launched, on the fake's clock, in launch order. */
  get launchTimes(): readonly number[] {
    return this.launched.map((record) => record.launchedAtClockMs);
  }

  /** A task by ARN or id, as DescribeTasks with TAGS would show it now. */
  task(arnOrId: string): FakeTask | undefined {
    const record = this.findTask(arnOrId);
    return record === undefined ? undefined : this.view(record);
  }

  /**
   * What the task's process printed, as awslogs would collect it: both streams interleaved in
   * arrival order, or one of them.
   */
  output(arnOrId: string, stream?: "stdout" | "stderr"): string {
    const record = this.requireTask(arnOrId);
    return record.output
      .filter((chunk) => stream === undefined || chunk.stream === stream)
      .map((chunk) => chunk.text)
      .join("");
  }

  /**
   * Resolves when the task's `lastStatus` is `status`; rejects when it stops first or after
   * `timeoutMs`.
   */
  waitForTask(arnOrId: string, status: string, timeoutMs = 10_000): Promise<FakeTask> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): boolean => {
        const record = this.findTask(arnOrId);
        if (record === undefined) {
          reject(new Error(`FakeEcs: no task "${arnOrId}".`));
          return true;
        }
        if (record.task.lastStatus === status) {
          resolve(this.view(record));
          return true;
        }
        if (record.task.lastStatus === "STOPPED") {
          reject(
            new Error(`FakeEcs: task ${record.id} stopped (${record.task.stoppedReason}) without reaching ${status}.`),
          );
          return true;
        }
        return false;
      };
      if (check()) return;
      const listener = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      timer = setTimeout(() => {
        this.listeners.delete(listener);
        const last = this.findTask(arnOrId)?.task.lastStatus;
        reject(new Error(`FakeEcs: task ${arnOrId} is still ${last} after ${timeoutMs} ms (waited for ${status}).`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  /** Every registered revision (ACTIVE and INACTIVE), by family then revision. */
  taskDefinitions(family?: string): readonly TaskDefinition[] {
    return [...this.families.entries()]
      .filter(([name]) => family === undefined || name === family)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([, records]) => records.map((record) => structuredClone(record.definition)));
  }

  // ---------------------------------------------------------------------------------------------
  // Fault injection

  /** The next `count` RegisterTaskDefinition calls fail with ECS's concurrent-registration ClientException. */
  failNextRegistrations(count: number): void {
    this.registrationFailures += count;
  }

  /** The next RunTask calls (one per entry) return `{ tasks: [], failures: [entry] }` and launch nothing. */
  failNextRunTasks(failures: readonly RunTaskFailure[]): void {
    this.runTaskFailures.push(...failures);
  }

  /**
   * The next `count` RunTask calls do their work (launch their tasks, remember their tokens) and
   * then answer 500 ServerException, as when ECS fails after acting or the answer is lost on the
   * way: the caller cannot tell whether a task started.
   */
  loseNextRunTaskAnswers(count: number): void {
    this.lostRunTaskAnswers += count;
  }

  /** The next launched tasks (one per entry) end as given instead of as their process does. */
  injectLaunchOutcomes(outcomes: readonly LaunchOutcome[]): void {
    this.launchOutcomes.push(...outcomes);
  }

  /**
   * Switches ECS's request throttling on (ECS's limits unless given: RunTask burst 100 and 40/s,
   * Fargate launches burst 100 and 20/s, RegisterTaskDefinition 1/s), with full buckets, or off
   * (`false`). The buckets run on the fake's clock.
   */
  setThrottling(options: FakeEcsThrottlingOptions | boolean): void {
    this.throttling.configure(options);
  }

  /** How many calls each bucket refused with ThrottlingException. */
  get throttled(): Readonly<{ runTask: number; fargateLaunches: number; registerTaskDefinition: number }> {
    return { ...this.throttling.refused };
  }

  /**
   * The account's Fargate vCPU quota: a RunTask that would take the vCPUs of the tasks not yet
   * STOPPED past it is refused with ECS_MESSAGES.vcpuLimit, as a `failures[]` entry (default) or
   * as a ClientException. `undefined`: no quota.
   */
  setVcpuQuota(quota: number | { readonly vcpus: number; readonly answer?: "failure" | "error" } | undefined): void {
    this.vcpuQuota =
      quota === undefined
        ? undefined
        : typeof quota === "number"
          ? { vcpus: quota, answer: "failure" }
          : { vcpus: quota.vcpus, answer: quota.answer ?? "failure" };
  }

  /** Associates capacity providers with a cluster (PutClusterCapacityProviders), replacing its list. */
  setCapacityProviders(cluster: string, providers: readonly string[]): void {
    if (!this.clusters.has(cluster)) throw new Error(`FakeEcs: no cluster "${cluster}".`);
    this.capacityProviders.set(cluster, new Set(providers));
  }

  /**
   * Stops a task as ECS itself would, with the given stop code: SpotInterruption and
   * TerminationNotice (Fargate reclaims the capacity: SIGTERM, then SIGKILL), ServiceSchedulerInitiated,
   * InfrastructureHealth, or TaskFailedToStart for a task not yet RUNNING. `reason` is the
   * stoppedReason (ECS's usual wording by default).
   */
  stopTaskWith(arnOrId: string, stopCode: StopCodeInjection, reason?: string): void {
    const record = this.requireTask(arnOrId);
    if (record.finished) throw new Error(`FakeEcs: task ${record.id} has already stopped.`);
    if (stopCode === "TaskFailedToStart" && record.task.lastStatus === "RUNNING") {
      throw new Error(`FakeEcs: task ${record.id} is RUNNING; TaskFailedToStart is for a task that has not started.`);
    }
    this.requestStop(record, reason ?? ECS_MESSAGES.stopReasons[stopCode], stopCode);
  }

  /**
   * Ends a RUNNING task as if its essential container exited with `exitCode` (SIGKILLing its process,
   * if any): STOPPED, EssentialContainerExited.
   */
  finishTask(arnOrId: string, exitCode: number): void {
    const record = this.requireTask(arnOrId);
    if (record.task.lastStatus !== "RUNNING") {
      throw new Error(
        `FakeEcs: finishTask ends RUNNING tasks; task ${record.id} is ${record.task.lastStatus}. Wait for RUNNING first.`,
      );
    }
    this.forceEnd(record, { exitCode, reason: undefined });
  }

  /** Kills every child process (SIGKILL), waits for them, and closes the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      process.off("exit", this.killChildrenOnExit);
      for (const record of this.launched) {
        for (const timer of record.timers) clearTimeout(timer);
        record.timers.clear();
        record.child?.kill("SIGKILL");
      }
      await Promise.all(this.launched.map((record) => record.exited));
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        // The SDK keeps connections alive; close() alone would wait for them.
        this.server.closeAllConnections();
      });
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------
  // Protocol

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    try {
      const body = await readBody(request);
      const target = request.headers["x-amz-target"];
      const targetText = Array.isArray(target) ? target.join(",") : (target ?? "");
      const operation = targetText.startsWith(TARGET_PREFIX) ? targetText.slice(TARGET_PREFIX.length) : targetText;
      let input: unknown;
      try {
        input = body.trim() === "" ? {} : JSON.parse(body);
      } catch {
        this.log.push({ operation, input: body, atMs: this.clock.now() });
        throw new EcsError("SerializationException", "The request body is not valid JSON.");
      }
      this.log.push({ operation, input, atMs: this.clock.now() });
      if (request.method !== "POST" || !isOperation(operation) || !targetText.startsWith(TARGET_PREFIX)) {
        throw new EcsError(
          "UnknownOperationException",
          `The fake ECS does not implement "${targetText}" (${request.method} ${request.url}).`,
        );
      }
      this.callCounts[operation] += 1;
      // ECS throttles before it looks at the request.
      if (operation === "RunTask") this.throttling.take("runTask");
      if (operation === "RegisterTaskDefinition") this.throttling.take("registerTaskDefinition");
      if (!isRecord(input)) throw new EcsError("SerializationException", "The request body must be a JSON object.");
      const output = this.dispatch(operation, input);
      if (operation === "RunTask" && this.lostRunTaskAnswers > 0) {
        this.lostRunTaskAnswers -= 1;
        send(
          response,
          500,
          { __type: "ServerException", message: "Service encountered an internal error." },
          requestId,
        );
        return;
      }
      send(response, 200, output, requestId);
    } catch (error) {
      if (error instanceof EcsError) {
        send(response, 400, { __type: error.type, message: error.message, ...error.extra }, requestId);
      } else {
        send(response, 500, { __type: "ServerException", message: String(error) }, requestId);
      }
    }
  }

  // The SDK sends these shapes; each handler checks what ECS checks (required fields, limits).
  private dispatch(operation: FakeEcsOperation, input: object): unknown {
    switch (operation) {
      case "RegisterTaskDefinition":
        return this.registerTaskDefinition(input as RegisterTaskDefinitionRequest);
      case "DescribeTaskDefinition":
        return this.describeTaskDefinition(input as DescribeTaskDefinitionRequest);
      case "ListTaskDefinitions":
        return this.listTaskDefinitions(input as ListTaskDefinitionsRequest);
      case "DeregisterTaskDefinition":
        return this.deregisterTaskDefinition(input as DeregisterTaskDefinitionRequest);
      case "RunTask":
        return this.runTask(input as RunTaskRequest);
      case "DescribeTasks":
        return this.describeTasks(input as DescribeTasksRequest);
      case "StopTask":
        return this.stopTask(input as StopTaskRequest);
      case "ListTasks":
        return this.listTasks(input as ListTasksRequest);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Task definitions

  private registerTaskDefinition(input: RegisterTaskDefinitionRequest): unknown {
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
    if (this.registrationFailures > 0) {
      this.registrationFailures -= 1;
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

  private describeTaskDefinition(input: DescribeTaskDefinitionRequest): unknown {
    const record = this.findTaskDefinition(requireString(input.taskDefinition, "taskDefinition"));
    if (record === undefined) throw new EcsError("ClientException", ECS_MESSAGES.unableToDescribeTaskDefinition);
    return {
      taskDefinition: record.definition,
      ...(input.include?.includes("TAGS") ? { tags: record.tags } : {}),
    };
  }

  private listTaskDefinitions(input: ListTaskDefinitionsRequest): unknown {
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

  private deregisterTaskDefinition(input: DeregisterTaskDefinitionRequest): unknown {
    const reference = requireString(input.taskDefinition, "taskDefinition");
    if (!reference.includes(":")) {
      throw new EcsError(
        "InvalidParameterException",
        `A revision is required to deregister a task definition: give family:revision or the full ARN (got "${reference}").`,
      );
    }
    const record = this.findTaskDefinition(reference);
    if (record === undefined) throw new EcsError("ClientException", ECS_MESSAGES.unableToDescribeTaskDefinition);
    if (record.definition.status === "ACTIVE") {
      record.definition.status = "INACTIVE";
      record.definition.deregisteredAt = new Date();
    }
    return { taskDefinition: record.definition };
  }

  /** `family` (latest ACTIVE), `family:revision` or the full ARN. */
  private findTaskDefinition(reference: string): TaskDefinitionRecord | undefined {
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

  // ---------------------------------------------------------------------------------------------
  // Tasks

  private runTask(input: RunTaskRequest): unknown {
    const cluster = this.resolveCluster(input.cluster);
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
    const earlier = token === undefined ? undefined : this.clientTokens.get(cluster, token);
    if (earlier !== undefined) {
      if (earlier.fingerprint !== fingerprint) {
        throw new EcsError(
          "ConflictException",
          "The RunTask request could not be processed due to conflicts. The provided clientToken is already in use with a different RunTask request.",
          { resourceIds: [...earlier.taskArns] },
        );
      }
      const tasks = earlier.taskArns.flatMap((arn) => {
        const record = this.launched.find((candidate) => candidate.task.taskArn === arn);
        return record === undefined ? [] : [this.render(record, true)];
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
    const definitionRecord = this.findTaskDefinition(reference);
    if (definitionRecord === undefined) throw new EcsError("ClientException", ECS_MESSAGES.taskDefinitionNotFound);
    const definition = definitionRecord.definition;
    if (definition.status !== "ACTIVE") throw new EcsError("ClientException", "TaskDefinition is inactive");

    const associated = this.capacityProviders.get(cluster) ?? new Set<string>();
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

    const injectedFailure = this.runTaskFailures.shift();
    if (injectedFailure !== undefined) return { tasks: [], failures: [{ ...injectedFailure } satisfies Failure] };

    const fargate = launchType === "FARGATE";
    const vcpusEach = fargate ? Number(input.overrides?.cpu ?? definition.cpu ?? 0) / 1024 : 0;
    if (this.vcpuQuota !== undefined && fargate) {
      const inUse = this.launched
        .filter((record) => record.task.lastStatus !== "STOPPED")
        .reduce((sum, record) => sum + record.vcpus, 0);
      if (inUse + vcpusEach * count > this.vcpuQuota.vcpus) {
        if (this.vcpuQuota.answer === "error") throw new EcsError("ClientException", ECS_MESSAGES.vcpuLimit);
        return { tasks: [], failures: [{ reason: ECS_MESSAGES.vcpuLimit } satisfies Failure] };
      }
    }
    // Fargate's task-launch rate: each task takes a token, all or none.
    if (fargate) this.throttling.takeFargateLaunches(count);

    const tags = [
      ...(input.propagateTags === "TASK_DEFINITION" ? definitionRecord.tags : []),
      ...requestTags,
      ...(input.enableECSManagedTags ? [{ key: "aws:ecs:clusterName", value: cluster }] : []),
    ];
    const records = Array.from({ length: count }, () =>
      this.createTask({ input, cluster, definition, launchType, capacityProvider, awsvpc, tags, vcpus: vcpusEach }),
    );
    if (token !== undefined) {
      this.clientTokens.remember(
        cluster,
        token,
        fingerprint,
        records.map((record) => record.task.taskArn ?? ""),
      );
    }
    for (const record of records) this.after(record, this.halfStartDelayMs, () => this.provisioned(record));
    return { tasks: records.map((record) => this.render(record, true)), failures: [] };
  }

  private createTask(spec: {
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
    const taskArn = `arn:aws:ecs:${this.region}:${FAKE_ECS_ACCOUNT_ID}:task/${cluster}/${id}`;
    const definitions = definition.containerDefinitions ?? [];
    const main = definitions.find((container) => container.essential !== false) ?? definitions[0];
    const containerOverrides = input.overrides?.containerOverrides ?? [];
    const override = containerOverrides.find((candidate) => candidate.name === main?.name);
    const fargate = launchType === "FARGATE";
    const containers: Container[] = definitions.map((container) => ({
      containerArn: `arn:aws:ecs:${this.region}:${FAKE_ECS_ACCOUNT_ID}:container/${cluster}/${id}/${randomUUID()}`,
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
      clusterArn: this.clusterArn(cluster),
      taskDefinitionArn: definition.taskDefinitionArn,
      availabilityZone: `${this.region}a`,
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
      command: main === undefined ? undefined : this.containerCommand(main, override),
      environment: {
        AWS_REGION: this.region,
        AWS_DEFAULT_REGION: this.region,
        AWS_EXECUTION_ENV: fargate ? "AWS_ECS_FARGATE" : "AWS_ECS_EC2",
        ...this.runner?.env,
        ...pairsToRecord(main?.environment),
        ...pairsToRecord(override?.environment),
      },
      outcome: this.launchOutcomes.shift(),
      output: [],
      timers: new Set(),
      finished: false,
      vcpus: spec.vcpus,
      launchedAtClockMs: this.clock.now(),
    };
    this.tasks.push(record);
    this.launched.push(record);
    return record;
  }

  /**
   * The container's argv (entryPoint + command), with a leading "tern" replaced by the runner's
   * command and a leading "node" by this process's Node (a stock Node image's `node`).
   */
  private containerCommand(
    container: ContainerDefinition,
    override: ContainerOverride | undefined,
  ): readonly string[] | undefined {
    const argv = [...(container.entryPoint ?? []), ...(override?.command ?? container.command ?? [])];
    if (argv.length === 0) return undefined;
    if (argv[0] === "tern" && this.runner !== undefined) return [...this.runner.command, ...argv.slice(1)];
    if (argv[0] === "node") return [process.execPath, ...argv.slice(1)];
    return argv;
  }

  private describeTasks(input: DescribeTasksRequest): unknown {
    const cluster = this.resolveCluster(input.cluster);
    const references = input.tasks;
    if (!Array.isArray(references) || references.length === 0) {
      throw new EcsError("InvalidParameterException", "Tasks cannot be empty.");
    }
    if (references.length > MAX_DESCRIBE_TASKS) {
      throw new EcsError(
        "InvalidParameterException",
        `Tasks can have at most ${MAX_DESCRIBE_TASKS} items (got ${references.length}).`,
      );
    }
    const withTags = input.include?.includes("TAGS") ?? false;
    const tasks: Task[] = [];
    const failures: Failure[] = [];
    this.forgetStopped();
    for (const reference of references) {
      const record = this.findKnownTask(reference);
      if (record === undefined || record.cluster !== cluster) {
        const arn = reference.startsWith("arn:")
          ? reference
          : `arn:aws:ecs:${this.region}:${FAKE_ECS_ACCOUNT_ID}:task/${cluster}/${reference}`;
        failures.push({ arn, reason: "MISSING" });
      } else {
        tasks.push(this.render(record, withTags));
      }
    }
    return { tasks, failures };
  }

  private stopTask(input: StopTaskRequest): unknown {
    const cluster = this.resolveCluster(input.cluster);
    this.forgetStopped();
    const record = this.findKnownTask(requireString(input.task, "task"));
    if (record === undefined || record.cluster !== cluster) {
      throw new EcsError("InvalidParameterException", "The referenced task was not found.");
    }
    this.requestStop(record, input.reason ?? ECS_MESSAGES.stoppedByUser);
    return { task: this.render(record, false) };
  }

  private listTasks(input: ListTasksRequest): unknown {
    const cluster = this.resolveCluster(input.cluster);
    if (
      input.startedBy !== undefined &&
      (input.family !== undefined || input.serviceName !== undefined || input.containerInstance !== undefined)
    ) {
      // "When you specify startedBy as the filter, it must be the only filter that you use." (API_ListTasks)
      throw new EcsError(
        "InvalidParameterException",
        "startedBy must be the only filter when it is given (besides desiredStatus).",
      );
    }
    const desiredStatus = input.desiredStatus ?? "RUNNING";
    this.forgetStopped();
    const arns = this.tasks
      .filter(
        (record) =>
          record.cluster === cluster &&
          record.task.desiredStatus === desiredStatus &&
          (input.startedBy === undefined || record.task.startedBy === input.startedBy) &&
          (input.family === undefined || record.definition.family === input.family) &&
          (input.launchType === undefined || record.task.launchType === input.launchType) &&
          // The fake has no services and no container instances.
          input.serviceName === undefined &&
          input.containerInstance === undefined,
      )
      .map((record) => record.task.taskArn ?? "");
    const page = paginate(arns, input.maxResults, input.nextToken);
    return { taskArns: page.items, nextToken: page.nextToken };
  }

  private resolveCluster(reference: string | undefined): string {
    const given = reference ?? "default";
    const arn = /^arn:aws[a-z-]*:ecs:([^:]+):(\d{12}):cluster\/(.+)$/.exec(given);
    const name = arn === null ? given : arn[1] === this.region && arn[2] === FAKE_ECS_ACCOUNT_ID ? arn[3] : undefined;
    if (name === undefined || !this.clusters.has(name)) {
      throw new EcsError("ClusterNotFoundException", ECS_MESSAGES.clusterNotFound);
    }
    return name;
  }

  private clusterArn(cluster: string): string {
    return `arn:aws:ecs:${this.region}:${FAKE_ECS_ACCOUNT_ID}:cluster/${cluster}`;
  }

  /** Any task ever launched (the test's view). */
  private findTask(arnOrId: string): TaskRecord | undefined {
    return this.launched.find((record) => record.task.taskArn === arnOrId || record.id === arnOrId);
  }

  /** A task ECS still knows about (what the API answers from). */
  private findKnownTask(arnOrId: string): TaskRecord | undefined {
    return this.tasks.find((record) => record.task.taskArn === arnOrId || record.id === arnOrId);
  }

  /** ECS forgets stopped tasks some time after they stop (about an hour): DescribeTasks then answers MISSING. */
  private forgetStopped(): void {
    const now = this.clock.now();
    this.tasks = this.tasks.filter(
      (record) => record.stoppedAtClockMs === undefined || now - record.stoppedAtClockMs < this.stoppedTaskRetentionMs,
    );
  }

  private requireTask(arnOrId: string): TaskRecord {
    const record = this.findTask(arnOrId);
    if (record === undefined) throw new Error(`FakeEcs: no task "${arnOrId}".`);
    return record;
  }

  private render(record: TaskRecord, withTags: boolean): Task {
    const task = structuredClone(record.task);
    if (!withTags) delete task.tags;
    return task;
  }

  private view(record: TaskRecord): FakeTask {
    return {
      ...this.render(record, true),
      ...(record.command === undefined ? {} : { command: [...record.command] }),
      environment: { ...record.environment },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle: PROVISIONING -> PENDING -> RUNNING -> DEPROVISIONING -> STOPPED (awsvpc), or
  // PENDING -> RUNNING -> STOPPING -> STOPPED otherwise.

  private provisioned(record: TaskRecord): void {
    this.update(record, { lastStatus: "PENDING", pullStartedAt: new Date() });
    const outcome = record.outcome;
    if (outcome?.kind === "fail-to-start") {
      this.finish(record, {
        stopCode: "TaskFailedToStart",
        stoppedReason: outcome.stoppedReason,
        containerReason: outcome.containerReason,
      });
      return;
    }
    const unpullable = record.task.containers?.find(
      (container) => container.image !== undefined && !this.pullable(container.image),
    );
    if (unpullable?.image !== undefined) {
      const reason = ECS_MESSAGES.cannotPullContainer(unpullable.image);
      this.finish(record, {
        stopCode: "TaskFailedToStart",
        stoppedReason: reason,
        containerReason: reason,
        containerName: unpullable.name,
      });
      return;
    }
    this.after(record, this.halfStartDelayMs, () => this.pulled(record));
  }

  private pulled(record: TaskRecord): void {
    this.update(record, { pullStoppedAt: new Date() });
    if (this.launchMode === "none") {
      this.running(record);
      return;
    }
    if (record.command === undefined) {
      const reason = `CannotStartContainerError: container ${record.mainContainer} has no entryPoint or command; the fake runs commands as local processes and cannot run an image's default command.`;
      this.finish(record, { stopCode: "TaskFailedToStart", stoppedReason: reason, containerReason: reason });
      return;
    }
    this.spawnContainer(record, record.command);
  }

  private running(record: TaskRecord): void {
    for (const container of record.task.containers ?? []) container.lastStatus = "RUNNING";
    this.update(record, { lastStatus: "RUNNING", startedAt: new Date() });
    const outcome = record.outcome;
    if (outcome?.kind === "oom") {
      this.after(record, outcome.afterMs, () =>
        this.forceEnd(record, { exitCode: 137, reason: ECS_MESSAGES.outOfMemory }),
      );
    } else if (outcome?.kind === "exit") {
      this.after(record, outcome.afterMs, () =>
        this.forceEnd(record, { exitCode: outcome.exitCode, reason: outcome.containerReason }),
      );
    }
  }

  private spawnContainer(record: TaskRecord, argv: readonly string[]): void {
    const [file = "", ...args] = argv;
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && name !== "NODE_OPTIONS") env[name] = value;
    }
    Object.assign(env, record.environment);
    const cannotStart = (message: string): void => {
      const reason = `CannotStartContainerError: ${message}`;
      this.finish(record, { stopCode: "TaskFailedToStart", stoppedReason: reason, containerReason: reason });
    };
    let child: ChildProcess;
    try {
      child = spawn(file, args, { cwd: this.runner?.cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: false });
    } catch (error) {
      cannotStart(error instanceof Error ? error.message : String(error));
      return;
    }
    record.child = child;
    for (const stream of ["stdout", "stderr"] as const) {
      child[stream]?.setEncoding("utf8");
      child[stream]?.on("data", (text: string) => record.output.push({ stream, text }));
    }
    let started = false;
    child.once("spawn", () => {
      started = true;
      if (!record.finished) this.running(record);
    });
    record.exited = new Promise<void>((resolve) => {
      let exitCode: number | undefined;
      let settled = false;
      let fallback: NodeJS.Timeout | undefined;
      const settle = (): void => {
        if (settled || exitCode === undefined) return;
        settled = true;
        clearTimeout(fallback);
        record.child = undefined;
        resolve();
        this.processExited(record, exitCode);
      };
      child.once("exit", (code, signal) => {
        exitCode = code ?? 128 + signalNumber(signal);
        // 'close' waits for the pipes to drain; a grandchild holding them must not keep the task RUNNING.
        fallback = setTimeout(settle, 500);
      });
      child.once("close", settle);
      child.once("error", (error) => {
        if (started || settled) return;
        settled = true;
        record.child = undefined;
        resolve();
        cannotStart(error.message);
      });
    });
  }

  /** The essential container's process exited with `exitCode` (128 + signal number when killed). */
  private processExited(record: TaskRecord, exitCode: number): void {
    if (record.forcedEnd !== undefined) {
      this.finish(record, {
        stopCode: "EssentialContainerExited",
        stoppedReason: ECS_MESSAGES.essentialContainerExited,
        exitCode: record.forcedEnd.exitCode,
        containerReason: record.forcedEnd.reason,
      });
    } else if (record.stopRequest !== undefined) {
      this.finish(record, {
        stopCode: record.stopRequest.stopCode,
        stoppedReason: record.stopRequest.reason,
        exitCode,
      });
    } else {
      this.finish(record, {
        stopCode: "EssentialContainerExited",
        stoppedReason: ECS_MESSAGES.essentialContainerExited,
        exitCode,
      });
    }
  }

  /** An injected outcome or finishTask: the container ends with this code, whatever its process would say. */
  private forceEnd(record: TaskRecord, end: { readonly exitCode: number; readonly reason: string | undefined }): void {
    if (record.finished || record.stopRequest !== undefined || record.forcedEnd !== undefined) return;
    record.forcedEnd = end;
    if (record.child !== undefined) record.child.kill("SIGKILL");
    else this.processExited(record, end.exitCode);
  }

  private requestStop(record: TaskRecord, reason: string, stopCode: TaskStopCode = "UserInitiated"): void {
    if (record.finished || record.stopRequest !== undefined || record.forcedEnd !== undefined) return;
    record.stopRequest = { reason, stopCode };
    this.update(record, {
      desiredStatus: "STOPPED",
      stoppingAt: new Date(),
      stopCode,
      stoppedReason: reason,
      // "Any tags associated with the task will be deleted." (API_StopTask)
      ...(stopCode === "UserInitiated" ? { tags: [] } : {}),
    });
    const child = record.child;
    if (child !== undefined) {
      // docker stop: SIGTERM, then SIGKILL after the stop timeout.
      child.kill("SIGTERM");
      this.after(record, this.stopTimeoutMs, () => child.kill("SIGKILL"));
    } else if (record.task.lastStatus === "RUNNING") {
      // launch: "none" has no process; report what a process without a SIGTERM handler would.
      this.processExited(record, 143);
    } else {
      this.finish(record, { stopCode, stoppedReason: reason });
    }
  }

  private finish(record: TaskRecord, end: TaskEnd): void {
    if (record.finished) return;
    record.finished = true;
    for (const timer of record.timers) clearTimeout(timer);
    record.timers.clear();
    const containerName = end.containerName ?? record.mainContainer;
    for (const container of record.task.containers ?? []) {
      container.lastStatus = "STOPPED";
      if (container.name !== containerName) continue;
      if (end.exitCode !== undefined) container.exitCode = end.exitCode;
      if (end.containerReason !== undefined) container.reason = end.containerReason;
    }
    const now = new Date();
    this.update(record, {
      desiredStatus: "STOPPED",
      lastStatus: record.awsvpc ? "DEPROVISIONING" : "STOPPING",
      stopCode: end.stopCode,
      stoppedReason: end.stoppedReason,
      stoppingAt: record.task.stoppingAt ?? now,
      executionStoppedAt: now,
    });
    this.after(record, this.halfStartDelayMs, () => {
      record.stoppedAtClockMs = this.clock.now();
      this.update(record, { lastStatus: "STOPPED", stoppedAt: new Date() });
    });
  }

  private update(record: TaskRecord, patch: Partial<Task>): void {
    Object.assign(record.task, patch);
    record.task.version = (record.task.version ?? 0) + 1;
    for (const listener of [...this.listeners]) listener();
  }

  private after(record: TaskRecord, delayMs: number, action: () => void): void {
    if (this.closing !== undefined) return;
    const timer = setTimeout(() => {
      record.timers.delete(timer);
      action();
    }, delayMs);
    record.timers.add(timer);
  }
}
