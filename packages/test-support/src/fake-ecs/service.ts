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
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TaskDefinition } from "@aws-sdk/client-ecs";
import { getLogEvents, LOGS_TARGET_PREFIX } from "./awslogs.js";
import { ClientTokens } from "./client-tokens.js";
import { type FakeEcsClock, realClock } from "./clock.js";
import { Clusters } from "./clusters.js";
import { ECS_MESSAGES, EcsError } from "./errors.js";
import { readBody, send } from "./http.js";
import { Tasks } from "./lifecycle.js";
import { RunTask } from "./run-task.js";
import { TaskDefinitions } from "./task-definitions.js";
import { TaskQueries } from "./task-queries.js";
import { view } from "./task-record.js";
import { type FakeEcsThrottlingOptions, Throttling } from "./throttle.js";
import {
  type FakeEcsCall,
  type FakeEcsOperation,
  type FakeEcsOptions,
  type FakeTask,
  isOperation,
  type LaunchOutcome,
  OPERATIONS,
  type RunTaskFailure,
  type StopCodeInjection,
} from "./types.js";
import { isRecord, TARGET_PREFIX } from "./validate.js";

/**
 * The fake ECS service. Start it with {@link FakeEcs.start}; always {@link FakeEcs.close} it, which
 * kills every child process it started.
 */
export class FakeEcs {
  /**
   * The URL to give `ECSClient` as `endpoint` (or as `AWS_ENDPOINT_URL_ECS`). It serves CloudWatch
   * Logs' `GetLogEvents` too, on the tasks' awslogs streams (`AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`).
   */
  readonly endpoint: string;
  readonly region: string;
  /** The fake's clock: client tokens, throttling buckets, forgetting stopped tasks. */
  readonly clock: FakeEcsClock;
  private readonly clusters: Clusters;
  private readonly definitions: TaskDefinitions;
  private readonly tasks: Tasks;
  private readonly runTasks: RunTask;
  private readonly queries: TaskQueries;
  /** Every operation's handler; each checks what ECS checks (required fields, limits). */
  private readonly handlers: Record<FakeEcsOperation, (input: object) => unknown>;
  private readonly throttling: Throttling;
  private readonly callCounts: Record<FakeEcsOperation, number>;
  private readonly log: FakeEcsCall[] = [];
  private lostRunTaskAnswers = 0;
  private closing: Promise<void> | undefined;
  private readonly killChildrenOnExit = (): void => this.tasks.killAll();

  private constructor(
    private readonly server: Server,
    port: number,
    options: FakeEcsOptions,
  ) {
    this.endpoint = `http://127.0.0.1:${port}`;
    this.region = options.region ?? "us-east-1";
    this.clock = options.clock ?? realClock;
    this.clusters = new Clusters(this.region, options);
    this.definitions = new TaskDefinitions(this.region);
    this.throttling = new Throttling(this.clock);
    if (options.throttling !== undefined && options.throttling !== false) this.throttling.configure(options.throttling);
    this.tasks = new Tasks({
      clock: this.clock,
      launchMode: options.launch ?? "process",
      halfStartDelayMs: Math.max(0, options.startDelayMs ?? 50) / 2,
      stopTimeoutMs: options.stopTimeoutMs ?? 2000,
      runner: options.runner,
      pullable: options.pullableImages ?? (() => true),
      stoppedTaskRetentionMs: options.stoppedTaskRetentionMs ?? 60 * 60 * 1000,
    });
    this.runTasks = new RunTask({
      region: this.region,
      clock: this.clock,
      runner: options.runner,
      clusters: this.clusters,
      definitions: this.definitions,
      tasks: this.tasks,
      clientTokens: new ClientTokens(this.clock),
      throttling: this.throttling,
    });
    this.queries = new TaskQueries(this.region, this.clusters, this.tasks);
    this.handlers = { ...this.definitions.operations, ...this.runTasks.operations, ...this.queries.operations };
    if (options.vcpuQuota !== undefined) this.setVcpuQuota(options.vcpuQuota);
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
    return this.tasks.launched.map((record) => view(record));
  }

  /** When each task was launched, on the fake's clock, in launch order. */
  get launchTimes(): readonly number[] {
    return this.tasks.launched.map((record) => record.launchedAtClockMs);
  }

  /** A task by ARN or id, as DescribeTasks with TAGS would show it now. */
  task(arnOrId: string): FakeTask | undefined {
    const record = this.tasks.find(arnOrId);
    return record === undefined ? undefined : view(record);
  }

  /**
   * What the task's process printed, as awslogs would collect it: both streams interleaved in
   * arrival order, or one of them.
   */
  output(arnOrId: string, stream?: "stdout" | "stderr"): string {
    const record = this.tasks.require(arnOrId);
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
    return this.tasks.waitFor(arnOrId, status, timeoutMs);
  }

  /** Every registered revision (ACTIVE and INACTIVE), by family then revision. */
  taskDefinitions(family?: string): readonly TaskDefinition[] {
    return this.definitions.all(family);
  }

  // ---------------------------------------------------------------------------------------------
  // Fault injection

  /** The next `count` RegisterTaskDefinition calls fail with ECS's concurrent-registration ClientException. */
  failNextRegistrations(count: number): void {
    this.definitions.failNext(count);
  }

  /** The next RunTask calls (one per entry) return `{ tasks: [], failures: [entry] }` and launch nothing. */
  failNextRunTasks(failures: readonly RunTaskFailure[]): void {
    this.runTasks.failures.push(...failures);
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
    this.runTasks.outcomes.push(...outcomes);
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
    this.runTasks.vcpuQuota =
      quota === undefined
        ? undefined
        : typeof quota === "number"
          ? { vcpus: quota, answer: "failure" }
          : { vcpus: quota.vcpus, answer: quota.answer ?? "failure" };
  }

  /** Associates capacity providers with a cluster (PutClusterCapacityProviders), replacing its list. */
  setCapacityProviders(cluster: string, providers: readonly string[]): void {
    this.clusters.setCapacityProviders(cluster, providers);
  }

  /**
   * Stops a task as ECS itself would, with the given stop code: SpotInterruption and
   * TerminationNotice (Fargate reclaims the capacity: SIGTERM, then SIGKILL), ServiceSchedulerInitiated,
   * InfrastructureHealth, or TaskFailedToStart for a task not yet RUNNING. `reason` is the
   * stoppedReason (ECS's usual wording by default).
   */
  stopTaskWith(arnOrId: string, stopCode: StopCodeInjection, reason?: string): void {
    const record = this.tasks.require(arnOrId);
    if (record.finished) throw new Error(`FakeEcs: task ${record.id} has already stopped.`);
    if (stopCode === "TaskFailedToStart" && record.task.lastStatus === "RUNNING") {
      throw new Error(`FakeEcs: task ${record.id} is RUNNING; TaskFailedToStart is for a task that has not started.`);
    }
    this.tasks.requestStop(record, reason ?? ECS_MESSAGES.stopReasons[stopCode], stopCode);
  }

  /**
   * Ends a RUNNING task as if its essential container exited with `exitCode` (SIGKILLing its process,
   * if any): STOPPED, EssentialContainerExited.
   */
  finishTask(arnOrId: string, exitCode: number): void {
    const record = this.tasks.require(arnOrId);
    if (record.task.lastStatus !== "RUNNING") {
      throw new Error(
        `FakeEcs: finishTask ends RUNNING tasks; task ${record.id} is ${record.task.lastStatus}. Wait for RUNNING first.`,
      );
    }
    this.tasks.forceEnd(record, { exitCode, reason: undefined });
  }

  /** Kills every child process (SIGKILL), waits for them, and closes the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      process.off("exit", this.killChildrenOnExit);
      await this.tasks.close();
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
      if (request.method === "POST" && targetText === `${LOGS_TARGET_PREFIX}GetLogEvents` && isRecord(input)) {
        // The awslogs side: the same endpoint serves AWS_ENDPOINT_URL_CLOUDWATCH_LOGS.
        send(response, 200, getLogEvents(this.tasks.launched, input), requestId);
        return;
      }
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
      const output = this.handlers[operation](input);
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
}
