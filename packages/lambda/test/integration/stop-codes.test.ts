/**
 * ECS's InfrastructureHealth stop code end to end: the scheduled agent launches through the fake
 * ECS, the fake stops the task as ECS would, and the task-state handler decides with the stop
 * code's plain-words diagnosis: a task that never started is relaunched (AWS's fault, not the
 * flow's); one whose runner had started fails with the explanation and the advice.
 */
import type { Flow } from "@tern/core";
import type { Backend } from "@tern/core/plugin";
import { setEcsClientFactory } from "@tern/env-fargate";
import type { FakeEcs } from "@tern/test-support/fake-ecs";
import { useFakeEcs as useEcs } from "@tern/test-support/fargate-setup";
import { taskStateEvent } from "@tern/test-support/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handler as agentHandler } from "../../src/handlers/agent.js";
import { handler as taskStateHandler } from "../../src/handlers/task-state.js";
import { resetRuntimes } from "../../src/runtime.js";
import { type HandlerWorld, startHandlerWorld } from "./handler-setup.js";

const PROJECT = "stop-codes";
const FLOW = "guarded-compliant";

let world: HandlerWorld | undefined;
/** Tasks that start at once (the runner's container gets to RUNNING). */
let fast: FakeEcs;
/** Tasks that take 8 s to start (and to deprovision): stopped at once, they never started. */
let slow: FakeEcs;
let backend: Backend;
const context = { getRemainingTimeInMillis: () => 60_000 };

beforeAll(async () => {
  world = await startHandlerWorld({
    name: "stop-codes",
    bucket: "tern-guardrails",
    ecs: [{}, { startDelayMs: 8_000 }],
  });
  [fast, slow] = world.ecs as [FakeEcs, FakeEcs];
  ({ backend } = world);
  const flows = (await import("../fixtures/guardrail-flows.js")) as Record<string, Flow>;
  await flows.compliant?.register(PROJECT, { backend });
}, 90_000);

afterAll(async () => {
  setEcsClientFactory(undefined);
  await world?.close();
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
