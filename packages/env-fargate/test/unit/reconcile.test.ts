import { DescribeTasksCommand, StopTaskCommand, type Task } from "@aws-sdk/client-ecs";
import { beforeEach, describe, expect, it } from "vitest";
import "aws-sdk-client-mock-vitest/extend";
import { decideRun, diagnoseStoppedTask, reconcileEcsTasks } from "../../src/index.js";
import { DEPLOYMENT, ecs, launchedRun, NOW, TASK_ARN } from "./fixtures.js";

const run = launchedRun;

/** Stopped tasks shaped like DescribeTasks answers and `ECS Task State Change` details. */
const stopped = {
  pull: {
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    desiredStatus: "STOPPED",
    stopCode: "TaskFailedToStart",
    stoppedReason:
      "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref ghcr.io/acme/missing:1: not found",
    containers: [
      {
        name: "tern-runner",
        image: "ghcr.io/acme/missing:1",
        lastStatus: "STOPPED",
        reason:
          "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref ghcr.io/acme/missing:1: not found",
      },
    ],
  },
  oom: {
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    desiredStatus: "STOPPED",
    stopCode: "EssentialContainerExited",
    stoppedReason: "Essential container in task exited",
    containers: [
      {
        name: "tern-runner",
        lastStatus: "STOPPED",
        exitCode: 137,
        reason: "OutOfMemoryError: Container killed due to memory usage",
      },
    ],
  },
  eni: {
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    desiredStatus: "STOPPED",
    stopCode: "TaskFailedToStart",
    stoppedReason: "Timeout waiting for network interface provisioning to complete.",
    containers: [{ name: "tern-runner", lastStatus: "STOPPED" }],
  },
  resourceInit: {
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    desiredStatus: "STOPPED",
    stopCode: "TaskFailedToStart",
    stoppedReason:
      "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm",
    containers: [{ name: "tern-runner", lastStatus: "STOPPED" }],
  },
  noContainers: {
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    desiredStatus: "STOPPED",
    stopCode: "TaskFailedToStart",
    stoppedReason: "Task failed to start",
    containers: [],
  },
  exited: {
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    desiredStatus: "STOPPED",
    stopCode: "EssentialContainerExited",
    stoppedReason: "Essential container in task exited",
    containers: [{ name: "tern-runner", lastStatus: "STOPPED", exitCode: 1 }],
  },
  user: {
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    desiredStatus: "STOPPED",
    stopCode: "UserInitiated",
    stoppedReason: "tern: run x was cancelled",
    containers: [{ name: "tern-runner", lastStatus: "STOPPED", exitCode: 143 }],
  },
} satisfies Record<string, Task>;

const running: Task = { taskArn: TASK_ARN, lastStatus: "RUNNING", desiredStatus: "RUNNING", containers: [] };

describe("diagnoseStoppedTask", () => {
  it("says what went wrong in plain words, and which stops are worth another launch", () => {
    expect(diagnoseStoppedTask(stopped.pull, DEPLOYMENT)).toMatchObject({
      transient: false,
      started: false,
      reason: expect.stringMatching(
        /could not pull the runner image ghcr\.io\/acme\/missing:1: CannotPullContainerError.*execution role/,
      ),
    });
    expect(diagnoseStoppedTask(stopped.oom, DEPLOYMENT)).toMatchObject({
      transient: false,
      reason: expect.stringMatching(
        /ran out of memory.*exit code 137.*1024 MiB.*memory option.*\/tern\/runs, stream tern\/tern-runner\/0123456789abcdef/,
      ),
    });
    expect(diagnoseStoppedTask(stopped.eni, DEPLOYMENT)).toMatchObject({ transient: true, started: false });
    expect(diagnoseStoppedTask(stopped.resourceInit, DEPLOYMENT)).toMatchObject({
      transient: false,
      reason: expect.stringMatching(/failed to start: ResourceInitializationError.*execution role/),
    });
    expect(diagnoseStoppedTask(stopped.noContainers, DEPLOYMENT)).toMatchObject({
      transient: false,
      started: false,
      reason: expect.stringMatching(/failed to start: Task failed to start/),
    });
    expect(diagnoseStoppedTask(stopped.exited, DEPLOYMENT)).toMatchObject({
      transient: false,
      started: true,
      reason: expect.stringMatching(/the runner exited with code 1 before reporting a final state/),
    });
  });
});

describe("decideRun", () => {
  it("fails a Submitted run whose image could not be pulled, with the diagnosis", () => {
    const r = run("Submitted");
    expect(decideRun(r, stopped.pull, NOW)).toEqual({
      decision: { runId: r.id, expectedRevision: 4, to: "Failed", reason: expect.stringMatching(/could not pull/) },
    });
  });

  it("fails a Running run killed for memory", () => {
    const r = run("Running");
    expect(decideRun(r, stopped.oom, NOW).decision).toMatchObject({
      to: "Failed",
      reason: expect.stringMatching(/out of memory/),
    });
  });

  it("relaunches a Submitted run after a transient start failure, up to maxRelaunches, keeping the history", () => {
    const first = decideRun(run("Submitted"), stopped.eni, NOW).decision;
    expect(first).toMatchObject({
      to: "Scheduled",
      reason: expect.stringMatching(/relaunching \(1 of 2\).*network interface/),
      deployment: {
        kind: "ecs-task",
        launched: false,
        launch: 1,
        relaunches: 1,
        previousTasks: [{ taskArn: TASK_ARN }],
      },
    });
    expect(first?.deployment?.taskArn).toBeUndefined();
    const last = decideRun(run("Submitted", { relaunches: 2, launch: 2 }), stopped.eni, NOW).decision;
    expect(last).toMatchObject({ to: "Failed", reason: expect.stringMatching(/Gave up after 2 relaunches/) });
    // A Running run is never relaunched: its flow may have done work.
    expect(decideRun(run("Running"), stopped.eni, NOW).decision?.to).toBe("Failed");
  });

  it("stops the task of a Cancelling run, then ends the run Cancelled once it stopped", () => {
    const r = run("Cancelling");
    expect(decideRun(r, running, NOW)).toEqual({ stop: `tern: run ${r.id} was cancelled` });
    expect(decideRun(r, { ...running, desiredStatus: "STOPPED" }, NOW)).toEqual({});
    expect(decideRun(r, stopped.user, NOW).decision).toMatchObject({
      to: "Cancelled",
      reason: expect.stringMatching(/^cancelled; /),
    });
  });

  it("stops a task still starting after the start timeout and fails its Submitted run", () => {
    const r = run("Submitted", {}, { updatedAtMs: NOW - 301_000 });
    const pending = { ...running, lastStatus: "PENDING" };
    const verdict = decideRun(r, pending, NOW, { startTimeoutMs: 300_000 });
    expect(verdict.stop).toMatch(/did not start within 300 s/);
    expect(verdict.decision).toMatchObject({
      to: "Failed",
      reason: expect.stringMatching(/still PENDING 301 s after launch/),
    });
    expect(
      decideRun(run("Submitted", {}, { updatedAtMs: NOW - 10_000 }), pending, NOW, { startTimeoutMs: 300_000 }),
    ).toEqual({});
  });

  it("stops a task whose runner stopped renewing its lease and fails the run", () => {
    const r = run("Running", {}, { lease: { owner: "runner:ip-10-0-0-1:7", expiresAtMs: NOW - 1 } });
    const lost = "its runner (ip-10-0-0-1:7) stopped renewing its lease: no renewal for 61 s (the lease lasts 60 s).";
    const verdict = decideRun(r, running, NOW, { leaseLost: lost });
    expect(verdict.stop).toMatch(/stopped reporting/);
    expect(verdict.decision).toMatchObject({
      to: "Failed",
      reason: expect.stringMatching(
        /stopped renewing its lease: no renewal for 61 s .*; ECS task \w+ was still RUNNING and was stopped/,
      ),
    });
    // Whatever the lease's expiry says by this clock, only the lease watch's verdict counts.
    expect(decideRun(r, running, NOW)).toEqual({});
  });

  it("waits a minute before believing a task is gone, then fails the run", () => {
    expect(decideRun(run("Submitted", {}, { updatedAtMs: NOW - 1_000 }), undefined, NOW)).toEqual({});
    expect(decideRun(run("Submitted"), undefined, NOW + 60_000).decision).toMatchObject({
      to: "Failed",
      reason: expect.stringMatching(/no longer exists/),
    });
  });
});

describe("reconcileEcsTasks", () => {
  beforeEach(() => ecs.reset());

  it("describes tasks per cluster, stops cancelled runs' tasks, decides the others, and leaves runs without a task to the generic rules", async () => {
    const cancelling = run("Cancelling", { taskArn: `${TASK_ARN}1` });
    const dead = run("Running", { taskArn: `${TASK_ARN}2` });
    const pending = run("Submitted", { launched: false, taskArn: undefined });
    const elsewhere = run("Running", { cluster: "other", taskArn: `${TASK_ARN}3` });
    ecs.on(DescribeTasksCommand, { cluster: "tern" }).resolves({
      tasks: [
        { ...running, taskArn: `${TASK_ARN}1` },
        { ...stopped.oom, taskArn: `${TASK_ARN}2` },
      ],
    });
    ecs.on(DescribeTasksCommand, { cluster: "other" }).resolves({ tasks: [{ ...running, taskArn: `${TASK_ARN}3` }] });
    ecs.on(StopTaskCommand).resolves({});
    const lines: string[] = [];
    const result = await reconcileEcsTasks([cancelling, dead, pending, elsewhere], {
      nowMs: NOW,
      log: (l) => lines.push(l),
      submittedGraceMs: 300_000,
      leaseLost: () => undefined,
    });
    expect(result.untracked).toEqual([pending.id]);
    expect(result.decisions).toEqual([expect.objectContaining({ runId: dead.id, to: "Failed" })]);
    expect(ecs.commandCalls(StopTaskCommand).map((c) => c.args[0].input)).toEqual([
      { cluster: "tern", task: `${TASK_ARN}1`, reason: `tern: run ${cancelling.id} was cancelled` },
    ]);
    expect(ecs).toHaveReceivedCommandTimes(DescribeTasksCommand, 2);
    expect(lines).toEqual([expect.stringMatching(/stopped ECS task/)]);
  });

  it("stops a task only after its run's failure is written (afterWrite)", async () => {
    const hung = run("Running", {}, { lease: { owner: "runner:h:1", expiresAtMs: NOW - 1 } });
    ecs.on(DescribeTasksCommand).resolves({ tasks: [running] });
    ecs.on(StopTaskCommand).resolves({});
    const result = await reconcileEcsTasks([hung], {
      nowMs: NOW,
      log: () => {},
      submittedGraceMs: 300_000,
      leaseLost: (r) => (r.id === hung.id ? "its runner (h:1) stopped renewing its lease." : undefined),
    });
    expect(result.decisions).toEqual([expect.objectContaining({ runId: hung.id, to: "Failed" })]);
    expect(ecs).not.toHaveReceivedCommand(StopTaskCommand);
    await result.decisions[0]?.afterWrite?.();
    expect(ecs).toHaveReceivedCommandOnce(StopTaskCommand);
  });

  it("leaves the runs of a cluster it cannot describe to the generic rules, and treats a deleted cluster's tasks as gone", async () => {
    const denied = run("Running", { cluster: "denied" });
    const deleted = run("Running", { cluster: "deleted" });
    const fine = run("Running", { taskArn: `${TASK_ARN}9` });
    ecs
      .on(DescribeTasksCommand, { cluster: "denied" })
      .rejects(Object.assign(new Error("User is not authorized"), { name: "AccessDeniedException" }));
    ecs
      .on(DescribeTasksCommand, { cluster: "deleted" })
      .rejects(Object.assign(new Error("Cluster not found."), { name: "ClusterNotFoundException" }));
    ecs
      .on(DescribeTasksCommand, { cluster: "tern" })
      .resolves({ tasks: [{ ...stopped.oom, taskArn: `${TASK_ARN}9` }] });
    const lines: string[] = [];
    const result = await reconcileEcsTasks([denied, deleted, fine], {
      nowMs: NOW + 120_000,
      log: (l) => lines.push(l),
      submittedGraceMs: 300_000,
      leaseLost: () => undefined,
    });
    expect(result.untracked).toEqual([denied.id]);
    expect(
      result.decisions.map((d) => [
        d.runId,
        d.to,
        d.reason.includes("no longer exists") || d.reason.includes("out of memory"),
      ]),
    ).toEqual([
      [deleted.id, "Failed", true],
      [fine.id, "Failed", true],
    ]);
    expect(lines).toEqual([expect.stringMatching(/describing 1 ECS tasks in denied .*not authorized/)]);
  });
});
