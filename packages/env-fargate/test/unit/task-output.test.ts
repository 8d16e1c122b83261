import { CloudWatchLogsClient, GetLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import type { JsonValue } from "@tern/core/plugin";
import { readDeploymentOutput } from "@tern/core/runtime";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { type EcsDeployment, readTaskOutput } from "../../src/index.js";
import { runRecord, TASK_ARN } from "./fixtures.js";

const logs = mockClient(CloudWatchLogsClient);
afterEach(() => logs.reset());

const TASK_ID = TASK_ARN.slice(TASK_ARN.lastIndexOf("/") + 1);

/** A Failed run launched as TASK_ARN, its deployment given `fields` over a launched one with awslogs. */
function ecsRun(fields: Partial<EcsDeployment> = {}) {
  const deployment: EcsDeployment = {
    kind: "ecs-task",
    launched: true,
    region: "eu-west-1",
    cluster: "tern",
    launch: 1,
    relaunches: 0,
    maxRelaunches: 2,
    taskArn: TASK_ARN,
    containerName: "tern-runner",
    logGroup: "/tern/runs",
    logStreamPrefix: "tern",
    ...fields,
  };
  return runRecord({ state: "Failed", deployment: deployment as unknown as Record<string, JsonValue> });
}

const serviceError = (name: string, message: string) =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });

describe("the end of an ECS task's output, from its CloudWatch Logs stream", () => {
  it("asks for the last lines of the task's stream and gives them oldest first", async () => {
    logs.on(GetLogEventsCommand).resolves({
      events: [
        { timestamp: 1_000, message: "node: bad option: --frobnicate\n" },
        { timestamp: 1_001, message: "exiting" },
      ],
    });
    const output = await readTaskOutput(ecsRun(), { limit: 100 });
    expect(logs.commandCalls(GetLogEventsCommand)[0]?.args[0].input).toEqual({
      logGroupName: "/tern/runs",
      logStreamName: `tern/tern-runner/${TASK_ID}`,
      startFromHead: false,
      limit: 100,
    });
    expect(output).toEqual({
      source: `CloudWatch Logs group /tern/runs, stream tern/tern-runner/${TASK_ID}`,
      lines: [
        { timeMs: 1_000, text: "node: bad option: --frobnicate" },
        { timeMs: 1_001, text: "exiting" },
      ],
      truncated: false,
    });
  });

  it("reads the stream the run recorded, and says when the limit cut older lines", async () => {
    logs.on(GetLogEventsCommand).resolves({
      events: [
        { timestamp: 5, message: "a" },
        { timestamp: 6, message: "b" },
      ],
    });
    const output = await readTaskOutput(ecsRun({ logStream: "custom/main/abc" }), { limit: 2 });
    expect(logs.commandCalls(GetLogEventsCommand)[0]?.args[0].input.logStreamName).toBe("custom/main/abc");
    expect(output.truncated).toBe(true);
  });

  it("says why there is nothing: no task, no log driver, no stream, an empty stream", async () => {
    expect(await readTaskOutput(ecsRun({ launched: false, taskArn: undefined }), { limit: 10 })).toMatchObject({
      lines: [],
      missing: "No ECS task was started for this run.",
    });
    expect(
      await readTaskOutput(ecsRun({ logGroup: undefined, logStreamPrefix: undefined }), { limit: 10 }),
    ).toMatchObject({ lines: [], missing: expect.stringContaining('logConfiguration: "none"') });
    expect(logs.calls()).toHaveLength(0);
    logs
      .on(GetLogEventsCommand)
      .rejectsOnce(serviceError("ResourceNotFoundException", "The specified log stream does not exist."))
      .resolves({ events: [] });
    expect((await readTaskOutput(ecsRun(), { limit: 10 })).missing).toMatch(
      /^The stream does not exist: the container never started/,
    );
    expect((await readTaskOutput(ecsRun(), { limit: 10 })).missing).toBe(
      "The stream holds no events: the container printed nothing.",
    );
  });

  it("names the permission when CloudWatch Logs refuses, and keeps other failures retryable", async () => {
    logs
      .on(GetLogEventsCommand)
      .rejectsOnce(serviceError("AccessDeniedException", "User: arn:aws:iam::1:user/ci is not authorized"))
      .rejectsOnce(serviceError("ServiceUnavailableException", "try later"));
    await expect(readTaskOutput(ecsRun(), { limit: 10 })).rejects.toMatchObject({
      code: "ENVIRONMENT",
      retryable: false,
      message: expect.stringMatching(/refused \(AccessDeniedException: .*logs:GetLogEvents on that group/),
    });
    await expect(readTaskOutput(ecsRun(), { limit: 10 })).rejects.toMatchObject({
      retryable: true,
      message: expect.stringContaining("failed: try later"),
    });
  });

  it("is what core reads for runs deployed as ECS tasks once the package is loaded; other runs have no reader", async () => {
    logs.on(GetLogEventsCommand).resolves({ events: [{ timestamp: 1, message: "hello" }] });
    expect((await readDeploymentOutput(ecsRun(), { limit: 5 }))?.lines).toEqual([{ timeMs: 1, text: "hello" }]);
    expect(await readDeploymentOutput(runRecord({ deployment: { kind: "process", pid: 1 } }), { limit: 5 })).toBe(
      undefined,
    );
    expect(await readDeploymentOutput(runRecord(), { limit: 5 })).toBe(undefined);
  });
});
