/**
 * ECS's InfrastructureHealth stop code end to end: the scheduled agent launches through the fake
 * ECS, the fake stops the task as ECS would, and the task-state handler decides with the stop
 * code's plain-words diagnosis: a task that never started is relaunched (AWS's fault, not the
 * flow's); one whose runner had started fails with the explanation and the advice.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Flow } from "@tern/core";
import type { Backend } from "@tern/core/plugin";
import { setEcsClientFactory } from "@tern/env-fargate";
import { type DynamoDbLocal, startDynamoDbLocal } from "@tern/test-support/dynamodb-local";
import { FakeEcs } from "@tern/test-support/fake-ecs";
import { useFakeEcs as useEcs } from "@tern/test-support/fargate-setup";
import { openLocalTable, serverlessEnv, setEnv, taskStateEvent } from "@tern/test-support/serverless";
import { type LocalServer, startS3rver } from "@tern/test-support/servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handler as agentHandler } from "../../src/handlers/agent.js";
import { handler as taskStateHandler } from "../../src/handlers/task-state.js";
import { logger, resetRuntimes } from "../../src/runtime.js";

const PROJECT = "stop-codes";
const IMAGE = "ghcr.io/tern/runner:test";
const FLOW = "guarded-compliant";

let db: DynamoDbLocal;
let s3: LocalServer;
/** Tasks that start at once (the runner's container gets to RUNNING). */
let fast: FakeEcs;
/** Tasks that take 8 s to start (and to deprovision): stopped at once, they never started. */
let slow: FakeEcs;
let backend: Backend;
let home: string;
let restoreEnv: () => void = () => {};
const context = { getRemainingTimeInMillis: () => 60_000 };

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "tern-stop-codes-"));
  logger.setLogLevel("WARN");
  const options = { clusters: ["tern"], launch: "none" as const, pullableImages: (image: string) => image === IMAGE };
  [db, s3, fast, slow] = await Promise.all([
    startDynamoDbLocal(),
    startS3rver(["tern-guardrails"]),
    FakeEcs.start(options),
    FakeEcs.start({ ...options, startDelayMs: 8_000 }),
  ]);
  restoreEnv = setEnv({
    ...serverlessEnv({
      home,
      table: "tern-stop-codes",
      dynamodbEndpoint: db.endpoint,
      s3Endpoint: s3.endpoint,
      ecsEndpoint: fast.endpoint,
      image: IMAGE,
    }),
    AWS_LAMBDA_FUNCTION_NAME: "tern-stop-codes-test",
  });
  backend = await openLocalTable(db.endpoint, "tern-stop-codes");
  const flows = (await import("../fixtures/guardrail-flows.js")) as Record<string, Flow>;
  await flows.compliant?.register(PROJECT, { backend });
}, 90_000);

afterAll(async () => {
  setEcsClientFactory(undefined);
  await resetRuntimes();
  await backend?.close();
  await Promise.all([db?.stop(), s3?.stop(), fast?.close(), slow?.close()]);
  restoreEnv();
  await rm(home, { recursive: true, force: true });
});

async function launched(fake: FakeEcs): Promise<{ runId: string; taskArn: string }> {
  await resetRuntimes();
  useEcs(fake);
  const { run } = await backend.createRun({ project: PROJECT, flow: FLOW });
  expect(await agentHandler({}, context)).toMatchObject({ submitted: 1 });
  return { runId: run.id, taskArn: (await backend.getRun(run.id))?.deployment?.taskArn as string };
}

describe("InfrastructureHealth through the fake ECS and the task-state handler", { timeout: 60_000 }, () => {
  it("relaunches a run whose task AWS stopped before it started", async () => {
    const { runId, taskArn } = await launched(slow);
    slow.stopTaskWith(taskArn, "InfrastructureHealth");
    const stopped = await slow.waitForTask(taskArn, "STOPPED", 30_000);
    expect(stopped.stopCode).toBe("InfrastructureHealth");
    expect(await taskStateHandler(taskStateEvent(stopped, taskArn))).toMatchObject({
      status: "updated",
      to: "Scheduled",
    });
    const run = await backend.getRun(runId);
    expect(run?.deployment).toMatchObject({ relaunches: 1 });
    expect(JSON.stringify(run?.deployment?.previousTasks)).toMatch(
      /stopped by AWS: AWS stopped the task because the infrastructure under it became unhealthy/,
    );
  });

  it("fails a run whose runner had started, explaining the stop code and what to do", async () => {
    const { runId, taskArn } = await launched(fast);
    await fast.waitForTask(taskArn, "RUNNING");
    fast.stopTaskWith(taskArn, "InfrastructureHealth");
    const stopped = await fast.waitForTask(taskArn, "STOPPED");
    expect(stopped).toMatchObject({ stopCode: "InfrastructureHealth" });
    expect(await taskStateHandler(taskStateEvent(stopped, taskArn))).toMatchObject({ status: "updated", to: "Failed" });
    expect((await backend.getRun(runId))?.reason).toMatch(
      /was stopped by AWS: .*infrastructure under it became unhealthy .*\(Task stopped because the underlying infrastructure was unhealthy\.\)\. The flow had started, so tern does not run it again by itself: start a new run/,
    );
  });
});
