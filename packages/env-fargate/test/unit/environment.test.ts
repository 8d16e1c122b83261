import {
  ConflictException,
  DescribeTaskDefinitionCommand,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
} from "@aws-sdk/client-ecs";
import {
  type ExecuteContext,
  type FlowVersionRecord,
  type JsonValue,
  LaunchUncertainError,
  type RunRecord,
  type SetupContext,
} from "@tern/core/plugin";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import "aws-sdk-client-mock-vitest/extend";
import {
  clearDefinitionCache,
  clientToken,
  FargateTaskEnvironment,
  type FargateTaskEnvironmentOptions,
  HASH_TAG,
  MAX_OVERRIDES_CHARS,
  Pacer,
  runTaskPacer,
  TASK_DEFINITION_ANNOTATION,
} from "../../src/index.js";
import {
  executeContext as baseExecuteContext,
  ecs,
  flowVersion as flowVersionRecord,
  manifest,
  noSuchDefinition,
  OPTIONS,
  RUN_ID,
  runRecord,
  storage,
  stubNewDefinition,
  TASK_ARN,
  TD_ARN,
} from "./fixtures.js";

const VERSION = 3;

function flowVersion(annotations?: Record<string, JsonValue>): FlowVersionRecord {
  return flowVersionRecord({ version: VERSION, ...(annotations === undefined ? {} : { annotations }) });
}

function setupContext(annotations?: Record<string, JsonValue>) {
  const annotate = vi.fn(async (_: Readonly<Record<string, JsonValue>>) => {});
  const context: SetupContext = { flowVersion: flowVersion(annotations), manifest, annotate };
  return { context, annotate };
}

function run(deployment?: Record<string, JsonValue>): RunRecord {
  return runRecord({
    version: VERSION,
    parameters: { big: "x".repeat(100_000) },
    ...(deployment === undefined ? {} : { deployment }),
  });
}

function executeContext(overrides: Partial<ExecuteContext> = {}): ExecuteContext {
  return baseExecuteContext({ run: run(), flowVersion: flowVersion(), ...overrides });
}

async function prepared(options: FargateTaskEnvironmentOptions = OPTIONS): Promise<FargateTaskEnvironment> {
  const env = new FargateTaskEnvironment(options);
  await env.setup(
    storage,
    setupContext({ [TASK_DEFINITION_ANNOTATION]: { hash: "stale", arn: "x", region: "eu-west-1" } }).context,
  );
  return env;
}

beforeEach(() => {
  ecs.reset();
  clearDefinitionCache();
});
afterEach(() => vi.useRealTimers());

describe("setup: the task definition by content", () => {
  it("registers when the family has no revision, tags it with the hash, and remembers the ARN on the flow version", async () => {
    stubNewDefinition();
    const env = new FargateTaskEnvironment({ ...OPTIONS, tags: { team: "data" } });
    const { context, annotate } = setupContext();
    await env.setup(storage, context);
    expect(env.taskDefinitionArn).toBe(TD_ARN);
    const [register] = ecs.commandCalls(RegisterTaskDefinitionCommand);
    const input = register?.args[0].input;
    expect(input).toMatchObject({
      family: "tern-etl",
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: "512",
      memory: "1024",
      containerDefinitions: [
        { name: "tern-runner", image: OPTIONS.image, command: ["tern", "execute"], essential: true },
      ],
    });
    const hash = input?.tags?.find((t) => t.key === HASH_TAG)?.value;
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(input?.tags).toContainEqual({ key: "team", value: "data" });
    expect(annotate).toHaveBeenCalledWith({ [TASK_DEFINITION_ANNOTATION]: { hash, arn: TD_ARN, region: "eu-west-1" } });
  });

  it("reuses the newest ACTIVE revision with the same hash instead of registering", async () => {
    ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: TD_ARN } });
    ecs.on(DescribeTaskDefinitionCommand).rejects(noSuchDefinition());
    const first = new FargateTaskEnvironment(OPTIONS);
    const { context } = setupContext();
    await first.setup(storage, context);
    const input = ecs.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input;
    const hash = input?.tags?.find((t) => t.key === HASH_TAG)?.value;
    if (input === undefined) throw new Error("nothing was registered");
    const { tags: _tags, ...content } = input;
    ecs.reset();
    clearDefinitionCache();
    ecs.on(DescribeTaskDefinitionCommand).resolves({
      taskDefinition: { ...content, taskDefinitionArn: TD_ARN, status: "ACTIVE" },
      tags: [{ key: HASH_TAG, value: hash }],
    });
    const second = new FargateTaskEnvironment(OPTIONS);
    await second.setup(storage, setupContext().context);
    expect(second.taskDefinitionArn).toBe(TD_ARN);
    expect(ecs).not.toHaveReceivedCommand(RegisterTaskDefinitionCommand);
    expect(ecs).toHaveReceivedCommandOnce(DescribeTaskDefinitionCommand);

    // A revision that carries the tag but runs another image is not trusted: register instead.
    ecs.reset();
    clearDefinitionCache();
    const forged = { ...content, containerDefinitions: [{ ...content.containerDefinitions?.[0], image: "evil:1" }] };
    ecs.on(DescribeTaskDefinitionCommand).resolves({
      taskDefinition: { ...forged, taskDefinitionArn: TD_ARN, status: "ACTIVE" },
      tags: [{ key: HASH_TAG, value: hash }],
    });
    ecs.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [TD_ARN] });
    ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: `${TD_ARN}8` } });
    const third = new FargateTaskEnvironment(OPTIONS);
    await third.setup(storage, setupContext().context);
    expect(third.taskDefinitionArn).toBe(`${TD_ARN}8`);
  });

  it("finds an older ACTIVE revision with the hash when the newest differs", async () => {
    const env = new FargateTaskEnvironment(OPTIONS);
    let hash = "";
    let content: Record<string, unknown> = {};
    ecs.on(DescribeTaskDefinitionCommand, { taskDefinition: "tern-etl" }).resolves({
      taskDefinition: {
        taskDefinitionArn: "arn:aws:ecs:eu-west-1:123456789012:task-definition/tern-etl:9",
        status: "ACTIVE",
      },
      tags: [{ key: HASH_TAG, value: "other" }],
    });
    ecs.on(ListTaskDefinitionsCommand).resolves({
      taskDefinitionArns: ["arn:aws:ecs:eu-west-1:123456789012:task-definition/tern-etl:9", TD_ARN],
    });
    ecs.on(DescribeTaskDefinitionCommand, { taskDefinition: TD_ARN }).callsFake(async () => ({
      taskDefinition: { ...content, taskDefinitionArn: TD_ARN, status: "ACTIVE" },
      tags: [{ key: HASH_TAG, value: hash }],
    }));
    // Learn the hash and content the environment computes (what it would register).
    ecs.on(RegisterTaskDefinitionCommand).callsFake(async (input) => {
      hash = input.tags.find((t: { key: string }) => t.key === HASH_TAG).value;
      const { tags: _tags, ...rest } = input;
      content = rest;
      throw Object.assign(new Error("Too many concurrent attempts to create a new revision of the specified family."), {
        name: "ClientException",
      });
    });
    await env.setup(storage, setupContext().context);
    // First pass: no match, register refused as concurrent; second pass finds the revision by hash.
    expect(env.taskDefinitionArn).toBe(TD_ARN);
    expect(ecs).toHaveReceivedCommandOnce(RegisterTaskDefinitionCommand);
    expect(ecs.commandCalls(ListTaskDefinitionsCommand)[0]?.args[0].input).toMatchObject({
      familyPrefix: "tern-etl",
      status: "ACTIVE",
      sort: "DESC",
    });
  });

  it("retries 'Too many concurrent attempts' with backoff and then registers", async () => {
    ecs.on(DescribeTaskDefinitionCommand).rejects(noSuchDefinition());
    const concurrent = Object.assign(
      new Error("Too many concurrent attempts to create a new revision of the specified family."),
      {
        name: "ClientException",
      },
    );
    ecs
      .on(RegisterTaskDefinitionCommand)
      .rejectsOnce(concurrent)
      .rejectsOnce(concurrent)
      .resolves({ taskDefinition: { taskDefinitionArn: TD_ARN } });
    const env = new FargateTaskEnvironment(OPTIONS);
    await env.setup(storage, setupContext().context);
    expect(env.taskDefinitionArn).toBe(TD_ARN);
    expect(ecs).toHaveReceivedCommandTimes(RegisterTaskDefinitionCommand, 3);
    expect(ecs).toHaveReceivedCommandTimes(DescribeTaskDefinitionCommand, 3);
  });

  it("fails with ECS's message for any other registration error", async () => {
    ecs.on(DescribeTaskDefinitionCommand).rejects(noSuchDefinition());
    ecs
      .on(RegisterTaskDefinitionCommand)
      .rejects(Object.assign(new Error("Invalid 'cpu' setting for task."), { name: "ClientException" }));
    const env = new FargateTaskEnvironment(OPTIONS);
    await expect(env.setup(storage, setupContext().context)).rejects.toThrow(
      /registering task definition family tern-etl failed: Invalid 'cpu' setting/,
    );
  });

  it("checks the ARN a flow version remembers with one DescribeTaskDefinition; this process's cache makes no call", async () => {
    stubNewDefinition();
    const { context, annotate } = setupContext();
    await new FargateTaskEnvironment(OPTIONS).setup(storage, context);
    const remembered = annotate.mock.calls[0]?.[0] as Record<string, JsonValue>;
    const registered = ecs.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input;
    ecs.reset();
    clearDefinitionCache();
    ecs.on(DescribeTaskDefinitionCommand).resolves({
      taskDefinition: { ...registered, taskDefinitionArn: TD_ARN, status: "ACTIVE" } as never,
      tags: registered?.tags,
    });
    const fromVersion = setupContext(remembered);
    const env = new FargateTaskEnvironment(OPTIONS);
    await env.setup(storage, fromVersion.context);
    expect(env.taskDefinitionArn).toBe(TD_ARN);
    expect(fromVersion.annotate).not.toHaveBeenCalled();
    // The process cache: a version without the annotation (another version of the same content).
    const other = new FargateTaskEnvironment(OPTIONS);
    await other.setup(storage, setupContext().context);
    expect(other.taskDefinitionArn).toBe(TD_ARN);
    expect(ecs.calls()).toHaveLength(1);
    expect(ecs.commandCalls(DescribeTaskDefinitionCommand)[0]?.args[0].input).toEqual({
      taskDefinition: TD_ARN,
      include: ["TAGS"],
    });
  });
});

describe("execute: RunTask", () => {
  async function launched(options: FargateTaskEnvironmentOptions = OPTIONS) {
    stubNewDefinition();
    return prepared(options);
  }

  it("runs by ARN with a clientToken from the run id, run tags, startedBy and overrides holding only the run id and backend", async () => {
    const env = await launched();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const deployment = await env.execute(storage, "loc", executeContext());
    const input = ecs.commandCalls(RunTaskCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      cluster: "tern",
      taskDefinition: TD_ARN,
      count: 1,
      launchType: "FARGATE",
      clientToken: clientToken(RUN_ID, 0),
      startedBy: `tern/${RUN_ID}`,
      networkConfiguration: {
        awsvpcConfiguration: { subnets: ["subnet-0123456789abcdef0"], assignPublicIp: "DISABLED" },
      },
      overrides: {
        containerOverrides: [
          {
            name: "tern-runner",
            environment: [
              { name: "TERN_RUN_ID", value: RUN_ID },
              { name: "TERN_BACKEND", value: "dynamodb://tern-state?region=eu-west-1" },
            ],
          },
        ],
      },
    });
    expect(input?.tags).toEqual(
      expect.arrayContaining([
        { key: "tern:run-id", value: RUN_ID },
        { key: "tern:flow", value: "etl" },
        { key: "tern:version", value: "3" },
      ]),
    );
    // Parameters (100 KB here) never travel in the overrides.
    expect(JSON.stringify(input?.overrides).length).toBeLessThan(MAX_OVERRIDES_CHARS);
    expect(clientToken(RUN_ID, 0).length).toBeLessThanOrEqual(64);
    expect(deployment.details).toMatchObject({
      kind: "ecs-task",
      launched: true,
      taskArn: TASK_ARN,
      cluster: "tern",
      region: "eu-west-1",
      taskDefinitionArn: TD_ARN,
      launch: 0,
      relaunches: 0,
    });
    expect(deployment.exited).toBeUndefined();
  });

  it("uses a capacity provider strategy instead of a launch type when given", async () => {
    const env = await launched({ ...OPTIONS, capacityProviderStrategy: [{ capacityProvider: "FARGATE_SPOT" }] });
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    await env.execute(storage, "loc", executeContext());
    const input = ecs.commandCalls(RunTaskCommand)[0]?.args[0].input;
    expect(input?.capacityProviderStrategy).toEqual([{ capacityProvider: "FARGATE_SPOT" }]);
    expect(input?.launchType).toBeUndefined();
  });

  it("retries a capacity failure with a new token recorded on the run first, then succeeds", async () => {
    const env = await launched();
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({
        tasks: [],
        failures: [{ reason: "Capacity is unavailable at this time. Please try again later." }],
      })
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const saved: Array<Readonly<Record<string, JsonValue>>> = [];
    const deployment = await env.execute(
      storage,
      "loc",
      executeContext({ saveDeployment: async (d) => void saved.push(d) }),
    );
    const tokens = ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input.clientToken);
    expect(tokens).toEqual([clientToken(RUN_ID, 0), clientToken(RUN_ID, 1)]);
    expect(saved).toEqual([expect.objectContaining({ kind: "ecs-task", launched: false, launch: 1 })]);
    expect(deployment.details).toMatchObject({ taskArn: TASK_ARN, launch: 1, clientToken: clientToken(RUN_ID, 1) });
  });

  it("keeps the same token when it cannot record a new one", async () => {
    const env = await launched();
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({ tasks: [], failures: [{ reason: "RESOURCE:MEMORY" }] })
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    await env.execute(storage, "loc", executeContext());
    const tokens = ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input.clientToken);
    expect(tokens).toEqual([clientToken(RUN_ID, 0), clientToken(RUN_ID, 0)]);
  });

  it("continues from the launch number a previous agent recorded", async () => {
    const env = await launched();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    await env.execute(
      storage,
      "loc",
      executeContext({
        run: run({
          kind: "ecs-task",
          launched: false,
          launch: 2,
          relaunches: 1,
          maxRelaunches: 2,
          region: "eu-west-1",
          cluster: "tern",
        }),
      }),
    );
    expect(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input.clientToken).toBe(clientToken(RUN_ID, 2));
  });

  it("hands the run back (never fails it) after launchAttempts transient failures, with AWS's reason", async () => {
    const env = await launched({ ...OPTIONS, launchAttempts: 3 });
    ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: "Capacity is unavailable at this time." }] });
    const attempt = env.execute(storage, "loc", executeContext({ saveDeployment: async () => {} }));
    await expect(attempt).rejects.toBeInstanceOf(LaunchUncertainError);
    await expect(attempt).rejects.toThrow(
      /in 3 attempts \(Capacity is unavailable at this time\.\); the run is handed back/,
    );
    expect(ecs).toHaveReceivedCommandTimes(RunTaskCommand, 3);
  });

  it("fails at once, with AWS's reason, on a failure that is not transient", async () => {
    const env = await launched();
    ecs
      .on(RunTaskCommand)
      .resolves({ tasks: [], failures: [{ arn: "arn:x", reason: "MISSING", detail: "cluster tern" }] });
    await expect(env.execute(storage, "loc", executeContext())).rejects.toThrow(
      /could not start a task for run .*: MISSING: cluster tern/,
    );
    expect(ecs).toHaveReceivedCommandOnce(RunTaskCommand);
  });

  it("adopts the task a token already launched when ECS answers ConflictException", async () => {
    const env = await launched();
    ecs
      .on(RunTaskCommand)
      .rejects(
        new ConflictException({ message: "The clientToken is already in use", $metadata: {}, resourceIds: [TASK_ARN] }),
      );
    const deployment = await env.execute(storage, "loc", executeContext());
    expect(deployment.details).toMatchObject({ taskArn: TASK_ARN });
  });

  it("finds the definition again, once, when the remembered revision was deregistered", async () => {
    const env = await launched();
    ecs
      .on(RunTaskCommand)
      .rejectsOnce(Object.assign(new Error("TaskDefinition is inactive"), { name: "ClientException" }))
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: `${TD_ARN}0` } });
    const deployment = await env.execute(storage, "loc", executeContext());
    expect(deployment.details).toMatchObject({ taskArn: TASK_ARN, taskDefinitionArn: `${TD_ARN}0` });
    expect(ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input.taskDefinition)).toEqual([TD_ARN, `${TD_ARN}0`]);
  });

  it("retries a thrown throttling or 5xx error with the same token, and says the launch is uncertain when it gives up", async () => {
    const env = await launched({ ...OPTIONS, launchAttempts: 3 });
    const throttled = Object.assign(new Error("Rate exceeded"), {
      name: "ThrottlingException",
      $metadata: { httpStatusCode: 400 },
    });
    ecs
      .on(RunTaskCommand)
      .rejectsOnce(throttled)
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const saved: unknown[] = [];
    const deployment = await env.execute(
      storage,
      "loc",
      executeContext({ saveDeployment: async (d) => void saved.push(d) }),
    );
    expect(deployment.details).toMatchObject({ taskArn: TASK_ARN, launch: 0 });
    expect(ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input.clientToken)).toEqual([
      clientToken(RUN_ID, 0),
      clientToken(RUN_ID, 0),
    ]);
    // The token never moved on: the first call may have started the task.
    expect(saved).toEqual([]);

    ecs.reset();
    ecs.on(RunTaskCommand).rejects(
      Object.assign(new Error("We encountered an internal error"), {
        name: "ServerException",
        $metadata: { httpStatusCode: 500 },
      }),
    );
    const attempt = env.execute(storage, "loc", executeContext());
    await expect(attempt).rejects.toBeInstanceOf(LaunchUncertainError);
    await expect(attempt).rejects.toThrow(/may or may not have started a task.*same clientToken/);
    expect(ecs).toHaveReceivedCommandTimes(RunTaskCommand, 3);
  });

  it("waits for the shared pacer before every RunTask", async () => {
    const env = await launched();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const wait = vi.spyOn(runTaskPacer, "wait");
    try {
      await env.execute(storage, "loc", executeContext());
      expect(wait).toHaveBeenCalledTimes(1);
    } finally {
      wait.mockRestore();
    }
  });

  it("tags runs of flows whose names ECS would refuse in a tag, with the characters replaced", async () => {
    const env = await launched();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    await env.execute(storage, "loc", executeContext({ run: { ...run(), flow: "etl (EU)#2" } }));
    expect(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input.tags).toContainEqual({
      key: "tern:flow",
      value: "etl _EU__2",
    });
  });

  it("refuses a backend a task cannot reach", async () => {
    const env = await launched();
    await expect(
      env.execute(storage, "loc", executeContext({ backendUrl: "sqlite:///home/me/.tern/state.db" })),
    ).rejects.toThrow(/cannot reach this agent's backend sqlite:.*TERN_BACKEND=dynamodb:/);
    await expect(env.execute(storage, "loc", executeContext({ backendUrl: undefined }))).rejects.toThrow(
      /embedded SQLite backend/,
    );
    expect(ecs).not.toHaveReceivedCommand(RunTaskCommand);
  });

  it("measures ECS's 8,192-character limit on the whole overrides, not only the container part", async () => {
    const env = await launched();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const base = "dynamodb://t?endpoint=";
    await env.execute(storage, "loc", executeContext({ backendUrl: base }));
    const whole = JSON.stringify(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input.overrides).length;
    // A backend URL that brings the whole overrides to exactly 8,192 characters is launched...
    const fits = `${base}${"x".repeat(8192 - whole)}`;
    await env.execute(storage, "loc", executeContext({ backendUrl: fits }));
    expect(JSON.stringify(ecs.commandCalls(RunTaskCommand)[1]?.args[0].input.overrides).length).toBe(8192);
    // ...one more character is refused, though the container overrides alone would still fit.
    await expect(env.execute(storage, "loc", executeContext({ backendUrl: `${fits}x` }))).rejects.toThrow(
      /the overrides of run .* take 8193 characters; ECS allows 8192/,
    );
    expect(ecs).toHaveReceivedCommandTimes(RunTaskCommand, 2);
  });

  it("refuses overrides above ECS's 8,192 characters", async () => {
    const env = await launched();
    await expect(
      env.execute(storage, "loc", executeContext({ backendUrl: `dynamodb://t?endpoint=${"x".repeat(9000)}` })),
    ).rejects.toThrow(/ECS allows 8192/);
    expect(ecs).not.toHaveReceivedCommand(RunTaskCommand);
  });
});

describe("Pacer", () => {
  it("spaces calls to the rate given, also when they all arrive at once", async () => {
    vi.useFakeTimers({ now: 0 });
    const pacer = new Pacer(20);
    const done: number[] = [];
    const waits = Array.from({ length: 5 }, () => pacer.wait().then(() => done.push(Date.now())));
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(waits);
    expect(done).toEqual([0, 50, 100, 150, 200]);
  });
});
