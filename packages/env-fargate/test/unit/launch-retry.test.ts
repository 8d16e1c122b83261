/**
 * The launch path and AWS's limits: throttling, "Request limit exceeded", vCPU quotas and
 * capacity are AWS's conditions, not the run's. They are retried with backoff within the
 * launch's attempts and then the run is handed back (LaunchUncertainError), never failed.
 */
import { DescribeTaskDefinitionCommand, RegisterTaskDefinitionCommand, RunTaskCommand } from "@aws-sdk/client-ecs";
import { EnvironmentError, LaunchUncertainError } from "@tern/core/plugin";
import { beforeEach, describe, expect, it } from "vitest";
import "aws-sdk-client-mock-vitest/extend";
import { isRateLimited, launchFailureKind } from "../../src/ecs.js";
import {
  clearDefinitionCache,
  clientToken,
  FargateTaskEnvironment,
  type FargateTaskEnvironmentOptions,
} from "../../src/index.js";
import { Pacer, runTaskPacer } from "../../src/pacing.js";
import {
  OPTIONS as BASE_OPTIONS,
  ecs,
  executeContext,
  flowVersion as flowVersionRecord,
  manifest,
  noSuchDefinition,
  RUN_ID,
  registeredEnvironment,
  runTaskRefusing,
  storage,
  stubNewDefinition,
  TASK_ARN,
  TD_ARN,
  throttled,
  useRecordingLaunchClock,
} from "./fixtures.js";

const OPTIONS: FargateTaskEnvironmentOptions = { ...BASE_OPTIONS, launchBackoffMs: 1000, launchAttempts: 4 };
const VCPU_LIMIT = "You've reached the limit on the number of vCPUs you can run concurrently";
const flowVersion = flowVersionRecord();
const context = () => executeContext({ flowVersion, saveDeployment: async () => {} });
const environment = (options: FargateTaskEnvironmentOptions = OPTIONS) => registeredEnvironment(options, flowVersion);
const clock = useRecordingLaunchClock();
const { waits } = clock;

beforeEach(() => {
  ecs.reset();
  clearDefinitionCache();
});

describe("launchFailureKind: the one place that decides what is retryable", () => {
  it("calls throttling, request limits, vCPU quotas and capacity transient", () => {
    expect(launchFailureKind(throttled())).toBe("transient");
    expect(launchFailureKind(Object.assign(new Error("Request limit exceeded."), { name: "ClientException" }))).toBe(
      "transient",
    );
    expect(launchFailureKind(Object.assign(new Error(VCPU_LIMIT), { name: "ClientException" }))).toBe("transient");
    expect(launchFailureKind(VCPU_LIMIT)).toBe("transient");
    // EC2's throttling as RunTask reports it, inside an InvalidParameterException.
    const ec2 = Object.assign(
      new Error(
        "Error retrieving security group information for [sg-05937427457b61ff5]: Request limit exceeded. (ErrorCode: RequestLimitExceeded)",
      ),
      { name: "InvalidParameterException" },
    );
    expect(launchFailureKind(ec2)).toBe("transient");
    expect(launchFailureKind("Capacity is unavailable at this time.")).toBe("transient");
    expect(launchFailureKind("RESOURCE:MEMORY")).toBe("transient");
  });

  it("calls 5xx, timeouts and resets uncertain, and the rest permanent", () => {
    expect(launchFailureKind(Object.assign(new Error("boom"), { name: "ServerException" }))).toBe("uncertain");
    expect(launchFailureKind(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).toBe("uncertain");
    expect(
      launchFailureKind(Object.assign(new Error("?"), { name: "Unknown", $metadata: { httpStatusCode: 503 } })),
    ).toBe("uncertain");
    expect(
      launchFailureKind(Object.assign(new Error("subnets can not be empty."), { name: "InvalidParameterException" })),
    ).toBe("permanent");
    expect(launchFailureKind("MISSING")).toBe("permanent");
  });
});

describe("RunTask answered with AWS's limits", () => {
  it("retries a ThrottlingException with the same clientToken after a jittered backoff, and launches once", async () => {
    const env = await environment();
    runTaskRefusing(throttled(), throttled());
    const deployment = await env.execute(storage, "loc", context());
    expect(deployment.details).toMatchObject({ launched: true, taskArn: TASK_ARN });
    const tokens = ecs.commandCalls(RunTaskCommand).map((call) => call.args[0].input.clientToken);
    expect(tokens).toEqual([clientToken(RUN_ID, 0), clientToken(RUN_ID, 0), clientToken(RUN_ID, 0)]);
    // Full jitter: each backoff is at most base * 2^(attempt-1), on the launch clock.
    const backoffs = waits.filter((ms) => ms > 50);
    expect(backoffs.length).toBeLessThanOrEqual(2);
    for (const ms of waits) expect(ms).toBeLessThanOrEqual(2000);
  });

  it("hands the run back after launchAttempts throttled answers instead of failing it", async () => {
    const env = await environment();
    ecs.on(RunTaskCommand).rejects(throttled());
    const launch = env.execute(storage, "loc", context());
    await expect(launch).rejects.toBeInstanceOf(LaunchUncertainError);
    await expect(launch).rejects.toThrow(/refused 4 times for now \(Rate exceeded\); the run is handed back/);
    expect(ecs).toHaveReceivedCommandTimes(RunTaskCommand, 4);
  });

  it("retries a vCPU-quota failure with a new, recorded clientToken and hands the run back when it persists", async () => {
    const env = await environment();
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({ tasks: [], failures: [{ reason: VCPU_LIMIT }] })
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const saved: unknown[] = [];
    const deployment = await env.execute(storage, "loc", {
      ...context(),
      saveDeployment: async (details) => void saved.push(details),
    });
    expect(deployment.details).toMatchObject({ launched: true, clientToken: clientToken(RUN_ID, 1) });
    expect(saved).toEqual([expect.objectContaining({ launched: false, launch: 1 })]);

    ecs.reset();
    ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: VCPU_LIMIT }] });
    const again = env.execute(storage, "loc", context());
    await expect(again).rejects.toBeInstanceOf(LaunchUncertainError);
    await expect(again).rejects.toThrow(/vCPUs.*handed back.*vCPU quota/);
  });

  it("retries a vCPU quota or 'Request limit exceeded' thrown as a ClientException", async () => {
    const env = await environment();
    runTaskRefusing(
      Object.assign(new Error(VCPU_LIMIT), { name: "ClientException" }),
      Object.assign(new Error("Request limit exceeded."), { name: "ClientException" }),
    );
    await expect(env.execute(storage, "loc", context())).resolves.toMatchObject({
      details: expect.objectContaining({ taskArn: TASK_ARN }),
    });
    expect(ecs).toHaveReceivedCommandTimes(RunTaskCommand, 3);
  });

  it("still fails a run at once on a permanent answer", async () => {
    const env = await environment();
    ecs
      .on(RunTaskCommand)
      .rejects(Object.assign(new Error("subnets can not be empty."), { name: "InvalidParameterException" }));
    const launch = env.execute(storage, "loc", context());
    await expect(launch).rejects.toBeInstanceOf(EnvironmentError);
    await expect(launch).rejects.not.toBeInstanceOf(LaunchUncertainError);
    expect(ecs).toHaveReceivedCommandOnce(RunTaskCommand);
  });
});

describe("RegisterTaskDefinition answered with ECS's throttling", () => {
  it("looks again and retries (another agent may have registered it meanwhile), never fails the run", async () => {
    ecs.on(DescribeTaskDefinitionCommand).rejects(noSuchDefinition());
    ecs
      .on(RegisterTaskDefinitionCommand)
      .rejectsOnce(throttled())
      .resolves({ taskDefinition: { taskDefinitionArn: TD_ARN } });
    const env = new FargateTaskEnvironment(OPTIONS);
    await env.setup(storage, { flowVersion, manifest, annotate: async () => {} });
    expect(env.taskDefinitionArn).toBe(TD_ARN);
    expect(ecs).toHaveReceivedCommandTimes(RegisterTaskDefinitionCommand, 2);
    expect(ecs).toHaveReceivedCommandTimes(DescribeTaskDefinitionCommand, 2);
  });
});

describe("many runs deployed at once in one process", () => {
  it("search for and register their task definition once, not once each", async () => {
    stubNewDefinition();
    const environments = Array.from({ length: 20 }, () => new FargateTaskEnvironment(OPTIONS));
    await Promise.all(
      environments.map((env) => env.setup(storage, { flowVersion, manifest, annotate: async () => {} })),
    );
    expect(environments.map((env) => env.taskDefinitionArn)).toEqual(environments.map(() => TD_ARN));
    expect(ecs).toHaveReceivedCommandOnce(RegisterTaskDefinitionCommand);
    expect(ecs).toHaveReceivedCommandOnce(DescribeTaskDefinitionCommand);
  });
});

describe("Pacer: a token bucket on the launch clock", () => {
  it("lets a burst through at once, then spaces calls to the rate", async () => {
    const pacer = new Pacer(20, 3);
    const at: number[] = [];
    for (let i = 0; i < 6; i++) {
      await pacer.wait();
      at.push(clock.nowMs);
    }
    expect(at).toEqual([0, 0, 0, 50, 100, 150]);
  });

  it("loses no slot when a caller arrives late", async () => {
    const pacer = new Pacer(20, 1);
    await pacer.wait();
    clock.nowMs = 30;
    await pacer.wait();
    expect(clock.nowMs).toBe(50);
    clock.nowMs = 120;
    await pacer.wait();
    expect(clock.nowMs).toBe(120);
  });

  it("halves its rate when throttled, once for calls refused together, and takes the burst away", async () => {
    const pacer = new Pacer(20, 5);
    pacer.throttled();
    pacer.throttled(500);
    expect(pacer.rate).toBe(10);
    const at: number[] = [];
    for (let i = 0; i < 3; i++) {
      await pacer.wait();
      at.push(clock.nowMs);
    }
    expect(at).toEqual([0, 100, 200]);
    pacer.throttled(1_000);
    expect(pacer.rate).toBe(5);
    for (let i = 0; i < 10; i++) pacer.throttled(2_000 + i * 1_000);
    expect(pacer.rate).toBe(1);
  });

  it("climbs back to its full rate and burst as calls go through", async () => {
    const pacer = new Pacer(20, 5);
    pacer.throttled();
    let calls = 0;
    while (pacer.rate < 20) {
      pacer.succeeded();
      calls += 1;
    }
    // From 10/s to 20/s at 1/rate per call: about 150 calls, some 10 s at the climbing rate.
    expect(calls).toBeGreaterThan(140);
    expect(calls).toBeLessThan(160);
    clock.nowMs = 1_000_000;
    const at: number[] = [];
    for (let i = 0; i < 6; i++) {
      await pacer.wait();
      at.push(clock.nowMs - 1_000_000);
    }
    expect(at).toEqual([0, 0, 0, 0, 0, 50]);
  });

  it("is slowed by a throttled RunTask and not by other refusals", async () => {
    const env = await environment();
    runTaskRefusing(throttled());
    await env.execute(storage, "flows/etl/m.json", context());
    // Halved by the refusal, then 1/rate back for the call that went through.
    expect(runTaskPacer.rate).toBeCloseTo(10.1);
    expect(isRateLimited(Object.assign(new Error(VCPU_LIMIT), { name: "ClientException" }))).toBe(false);
    expect(isRateLimited(Object.assign(new Error("Request limit exceeded."), { name: "ClientException" }))).toBe(true);
  });
});
