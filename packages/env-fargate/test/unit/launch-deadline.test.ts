/**
 * A launch's deadline (`ExecuteContext.deadlineMs`, a Lambda invocation's end minus a margin):
 * no retry waits past it; the run is handed back (LaunchUncertainError) for a later launch.
 * The launch path's clock is injected, so nothing here depends on real time.
 */
import { RunTaskCommand } from "@aws-sdk/client-ecs";
import { LaunchUncertainError } from "@tern/core/plugin";
import { beforeEach, describe, expect, it } from "vitest";
import "aws-sdk-client-mock-vitest/extend";
import { clearDefinitionCache, clientToken, type FargateTaskEnvironmentOptions } from "../../src/index.js";
import {
  OPTIONS as BASE_OPTIONS,
  ecs,
  executeContext,
  flowVersion as flowVersionRecord,
  RUN_ID,
  registeredEnvironment,
  runTaskRefusing,
  storage,
  TASK_ARN,
  throttled,
  useRecordingLaunchClock,
} from "./fixtures.js";

const OPTIONS: FargateTaskEnvironmentOptions = { ...BASE_OPTIONS, launchBackoffMs: 1000, launchAttempts: 4 };
const flowVersion = flowVersionRecord();
const context = (deadlineMs?: number) =>
  executeContext({ ...(deadlineMs === undefined ? {} : { deadlineMs }), flowVersion, saveDeployment: async () => {} });
const environment = (options: FargateTaskEnvironmentOptions = OPTIONS) => registeredEnvironment(options, flowVersion);
const { waits } = useRecordingLaunchClock();

beforeEach(() => {
  ecs.reset();
  clearDefinitionCache();
});

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
    expect(ecs).toHaveReceivedCommandOnce(RunTaskCommand);
    expect(waits).toEqual([]);
  });

  it("retries as before while the deadline is far, and launches once", async () => {
    const env = await environment();
    runTaskRefusing(throttled());
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
