/**
 * ECS task-state events (EventBridge `ECS Task State Change` for tern's tasks): moves the run to
 * its true state at once with the same logic as the sweep (`decideRun`), so a task that died is
 * seen in seconds rather than at the next agent tick.
 */
import type { Task } from "@aws-sdk/client-ecs";
import { isTernError } from "@tern/core";
import { isTerminalRunState } from "@tern/core/plugin";
import { endOpenTaskRuns } from "@tern/core/runtime";
import { decideRun, ecsClient, ecsDeployment } from "@tern/env-fargate";
import type { EventBridgeEvent } from "aws-lambda";
import { parseTaskStateChange } from "../events.js";
import { logger, runtime } from "../runtime.js";

export interface TaskStateResult {
  readonly status: "updated" | "stopping" | "unchanged" | "ignored";
  readonly runId?: string;
  readonly to?: string;
  readonly reason?: string;
}

/** The run a task belongs to: TERN_RUN_ID in its overrides, else its startedBy (`tern/<run id>`). */
export function runIdOf(detail: Partial<Task>): string | undefined {
  for (const override of detail.overrides?.containerOverrides ?? []) {
    const value = override.environment?.find((e) => e.name === "TERN_RUN_ID")?.value;
    if (value !== undefined && value !== "") return value;
  }
  const startedBy = detail.startedBy;
  return startedBy?.startsWith("tern/") ? startedBy.slice("tern/".length) : undefined;
}

export async function handler(input: EventBridgeEvent<string, unknown>): Promise<TaskStateResult> {
  const parsed = parseTaskStateChange(input);
  if (!parsed.ok) {
    logger.warn("not an ECS Task State Change event; ignored", {
      reason: parsed.reason,
      detailType: input?.["detail-type"],
      id: input?.id,
    });
    return { status: "ignored", reason: parsed.reason };
  }
  // The task as ECS described it: every field, not only those the schema names.
  const detail = parsed.event.detail as Partial<Task> & { taskArn: string };
  const runId = runIdOf(detail);
  if (runId === undefined) return { status: "ignored", reason: "not a tern task" };
  const rt = await runtime("task-state", { ecs: true });
  const run = await rt.backend.getRun(runId);
  if (run === undefined) return { status: "ignored", runId, reason: "no such run" };
  if (isTerminalRunState(run.state)) return { status: "unchanged", runId, reason: `already ${run.state}` };
  const deployment = ecsDeployment(run);
  if (deployment?.taskArn !== detail.taskArn) {
    // An earlier launch's task, or a launch not recorded yet: the sweep settles those.
    return { status: "ignored", runId, reason: "the run records another task" };
  }
  const verdict = decideRun(run, detail as Task, Date.now(), { startTimeoutMs: rt.config.submittedGraceMs });
  const stop = async (reason: string) => {
    const client = await ecsClient(deployment.region);
    const { StopTaskCommand } = await import("@aws-sdk/client-ecs");
    await client.send(new StopTaskCommand({ cluster: deployment.cluster, task: detail.taskArn, reason }));
    logger.info("stopped task", { runId, taskArn: detail.taskArn, reason });
  };
  const decision = verdict.decision;
  if (decision === undefined) {
    if (verdict.stop === undefined) return { status: "unchanged", runId };
    await stop(verdict.stop);
    return { status: "stopping", runId };
  }
  try {
    await rt.backend.transitionRun({
      runId,
      expectedRevision: decision.expectedRevision,
      to: decision.to,
      reason: decision.reason,
      lease: null,
      ...(decision.deployment === undefined ? {} : { deployment: decision.deployment }),
    });
  } catch (error) {
    if (isTernError(error, "RUN_CONFLICT")) return { status: "unchanged", runId, reason: "the run moved on meanwhile" };
    throw error;
  }
  // Its task runs end with it (a task that died mid-way leaves them Running).
  if (decision.to !== "Scheduled") await endOpenTaskRuns(rt.backend, runId, decision.to, decision.reason);
  // Stopped only once the run's end is written: a runner that reported just in time keeps its task.
  if (verdict.stop !== undefined) await stop(verdict.stop);
  logger.info("run updated from its task's state", { runId, to: decision.to, reason: decision.reason });
  if (decision.to === "Scheduled") {
    // A relaunch: launch again now rather than at the next tick.
    const dispatched = await rt.agent.dispatch(runId);
    logger.info("relaunched run", { runId, dispatch: dispatched.status, reason: dispatched.reason });
  }
  return { status: "updated", runId, to: decision.to, reason: decision.reason };
}
