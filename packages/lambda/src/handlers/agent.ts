/**
 * The scheduled agent: an EventBridge schedule invokes it (every minute in the stack). One poll
 * per invocation: sweep (expired leases, launches never recorded, ECS tasks that stopped,
 * cancelled runs' tasks), then claim and dispatch ready runs its labels satisfy, stopping
 * `TERN_SAFETY_MARGIN_MS` before the invocation's time runs out so every claim is deployed.
 *
 * It also consumes the launch queue (an SQS event source with a maximum concurrency): each
 * message names runs the CloudEvents handler created; they are dispatched at once, by the same
 * deadline, without a sweep. A run not launched (out of time, the table throttled) stays
 * Scheduled for the next tick, so no message is ever retried.
 */
import type { Context, ScheduledEvent, SQSEvent } from "aws-lambda";
import { logger, parseLaunchMessage, runtime } from "../runtime.js";

export interface AgentResult {
  /** Runs created for flows' schedules (due now or within the next minutes). */
  readonly scheduled: number;
  readonly claimed: number;
  readonly submitted: number;
  readonly failed: number;
  /** Whether it stopped claiming because time ran short (ready runs may remain for the next tick). */
  readonly outOfTime: boolean;
}

/** What one batch of the launch queue did. */
export interface LaunchResult {
  readonly launched: number;
  readonly skipped: ReadonlyArray<{ readonly runId: string; readonly reason: string }>;
  /** SQS partial batch response: always empty (the tick, not a redelivery, retries a run). */
  readonly batchItemFailures: readonly never[];
}

function isSqsEvent(event: unknown): event is SQSEvent {
  const records = (event as { Records?: unknown })?.Records;
  return Array.isArray(records) && records.every((r) => (r as { eventSource?: unknown })?.eventSource === "aws:sqs");
}

export function handler(event: SQSEvent, context: Pick<Context, "getRemainingTimeInMillis">): Promise<LaunchResult>;
export function handler(
  event: ScheduledEvent | Record<string, unknown>,
  context: Pick<Context, "getRemainingTimeInMillis">,
): Promise<AgentResult>;
export async function handler(
  event: ScheduledEvent | SQSEvent | Record<string, unknown>,
  context: Pick<Context, "getRemainingTimeInMillis">,
): Promise<AgentResult | LaunchResult> {
  const rt = await runtime("agent", { ecs: true });
  const deadlineMs = Date.now() + context.getRemainingTimeInMillis() - rt.config.safetyMarginMs;
  if (isSqsEvent(event)) {
    const runIds = event.Records.flatMap((record) => {
      const ids = parseLaunchMessage(record.body);
      if (ids === undefined) logger.warn("ignored a launch-queue message that names no runs", { id: record.messageId });
      return ids ?? [];
    });
    let launched = 0;
    const skipped: Array<{ runId: string; reason: string }> = [];
    await Promise.all(
      [...new Set(runIds)].map(async (runId) => {
        try {
          const result = await rt.agent.dispatch(runId, { deadlineMs });
          if (result.status === "submitted") launched += 1;
          else skipped.push({ runId, reason: result.reason ?? result.status });
          logger.info("launch from the queue", { runId, dispatch: result.status, reason: result.reason });
        } catch (error) {
          skipped.push({ runId, reason: (error as Error).message });
          logger.warn("could not launch a run from the queue; the next tick will", {
            runId,
            reason: (error as Error).message,
          });
        }
      }),
    );
    return { launched, skipped, batchItemFailures: [] };
  }
  const result = await rt.agent.pollOnce({ deadlineMs });
  const outOfTime = Date.now() >= deadlineMs;
  for (const failure of result.failed)
    logger.error("run failed to deploy", { runId: failure.runId, reason: failure.reason });
  logger.info("poll done", {
    scheduled: result.scheduled.length,
    claimed: result.claimed,
    submitted: result.submitted.length,
    failed: result.failed.length,
    outOfTime,
  });
  return {
    scheduled: result.scheduled.length,
    claimed: result.claimed,
    submitted: result.submitted.length,
    failed: result.failed.length,
    outOfTime,
  };
}
