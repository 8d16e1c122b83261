/**
 * A launch's deadline (`ExecuteContext.deadlineMs`, a Lambda invocation's end minus a margin):
 * no retry waits past it; the run is handed back (LaunchUncertainError) for a later launch.
 * The launch path's clock is injected, so nothing here depends on real time.
 */
import {
  DescribeTaskDefinitionCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
} from "@aws-sdk/client-ecs";
import {
  type ExecuteContext,
  type FlowVersionRecord,
  LaunchUncertainError,
  type Manifest,
  type RunRecord,
  type Storage,
} from "@tern/core";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  clearDefinitionCache,
  clientToken,
  FargateTaskEnvironment,
  type FargateTaskEnvironmentOptions,
} from "../../src/index.js";
import { setLaunchClock } from "../../src/pacing.js";

const ecs = mockClient(ECSClient);
const storage = {} as Storage;
const RUN_ID = "9a1c2b9e-8d7a-4c6b-9e5f-0a1b2c3d4e5f";
const TD_ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/tern-etl:7";
const TASK_ARN = "arn:aws:ecs:eu-west-1:123456789012:task/tern/0123456789abcdef0123456789abcdef";
const OPTIONS: FargateTaskEnvironmentOptions = {
  region: "eu-west-1",
  cluster: "tern",
  image: "ghcr.io/acme/tern-runner:1",
  subnets: ["subnet-0123456789abcdef0"],
  securityGroups: ["sg-0123456789abcdef0"],
  taskRoleArn: "arn:aws:iam::123456789012:role/tern-task",
  logConfiguration: "none",
  launchBackoffMs: 1000,
  launchAttempts: 4,
};

const flowVersion = {
  project: "p",
  flow: "etl",
  version: 1,
  labels: [],
  storage: { type: "S3Storage", options: {} },
  location: "flows/etl/m.json",
  manifestHash: "a".repeat(64),
  environmentType: "FargateTaskEnvironment",
  createdAtMs: 1,
} as FlowVersionRecord;
const manifest = { flow: { name: "etl" } } as unknown as Manifest;
const run = {
  id: RUN_ID,
  project: "p",
  flow: "etl",
  version: 1,
  state: "Submitted",
  revision: 2,
  labels: [],
  parameters: {},
  scheduledAtMs: 1,
  createdAtMs: 1,
  updatedAtMs: 1,
  attempts: 1,
} as RunRecord;

function context(deadlineMs?: number): ExecuteContext {
  return {
    ...(deadlineMs === undefined ? {} : { deadlineMs }),
    run,
    flowVersion,
    manifest,
    runnerCommand: ["tern"],
    runnerEnv: {},
    backendUrl: "dynamodb://tern-state?region=eu-west-1",
    saveDeployment: async () => {},
  };
}

/** A clock that records the waits instead of waiting. */
const waits: number[] = [];
let nowMs = 0;

async function environment(options: FargateTaskEnvironmentOptions = OPTIONS): Promise<FargateTaskEnvironment> {
  ecs
    .on(DescribeTaskDefinitionCommand)
    .rejects(Object.assign(new Error("Unable to describe task definition."), { name: "ClientException" }));
  ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: TD_ARN } });
  const env = new FargateTaskEnvironment(options);
  await env.setup(storage, { flowVersion, manifest, annotate: async () => {} });
  return env;
}

// ECS's model has no ThrottlingException shape: the SDK raises a service exception named after `__type`, as here.
const throttled = () =>
  Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });

beforeEach(() => {
  ecs.reset();
  clearDefinitionCache();
  waits.length = 0;
  nowMs = 0;
  setLaunchClock({
    now: () => nowMs,
    sleep: async (ms) => {
      waits.push(ms);
      nowMs += ms;
    },
  });
});
afterEach(() => setLaunchClock(undefined));

describe("a launch with a deadline", () => {
  it("hands the run back instead of waiting past the deadline after a throttled RunTask", async () => {
    const env = await environment();
    ecs.on(RunTaskCommand).rejects(throttled());
    // Any backoff ends at or after the deadline (now is 0 on the injected clock).
    const attempt = env.execute(storage, flowVersion.location, context(0));
    await expect(attempt).rejects.toBeInstanceOf(LaunchUncertainError);
    await expect(attempt).rejects.toThrow(/deadline comes before another attempt; the run is handed back/);
    expect(waits).toEqual([]);
  });

  it("hands the run back when ECS started no task (capacity) and no attempt fits before the deadline", async () => {
    const env = await environment();
    ecs.on(RunTaskCommand).resolves({ failures: [{ reason: "Capacity is unavailable at this time." }] });
    await expect(env.execute(storage, flowVersion.location, context(0))).rejects.toThrow(
      /ECS started no task .*Capacity is unavailable.*deadline comes before another attempt/,
    );
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
    expect(waits).toEqual([]);
  });

  it("retries as before while the deadline is far, and launches once", async () => {
    const env = await environment();
    ecs
      .on(RunTaskCommand)
      .rejectsOnce(throttled())
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const deployment = await env.execute(storage, flowVersion.location, context(3_600_000));
    expect(deployment.details).toMatchObject({ launched: true, taskArn: TASK_ARN });
    const calls = ecs.commandCalls(RunTaskCommand);
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => c.args[0].input.clientToken)).toEqual([clientToken(RUN_ID, 0), clientToken(RUN_ID, 0)]);
    // The backoff, then the pacer's spacing if the (random) backoff was shorter: a throttled
    // call took the pacer's burst away.
    expect(waits.length).toBeGreaterThanOrEqual(1);
    expect(waits.length).toBeLessThanOrEqual(2);
  });
});
