/**
 * The scheduled agent: an EventBridge schedule invokes it (every minute in the stack). One poll
 * per invocation: sweep (expired leases, launches never recorded, ECS tasks that stopped,
 * cancelled runs' tasks), then claim and dispatch ready runs its labels satisfy, stopping
 * `TERN_SAFETY_MARGIN_MS` before the invocation's time runs out so every claim is deployed.
 */
import type { Context, ScheduledEvent } from "aws-lambda";
import { logger, runtime } from "../runtime.js";

export interface AgentResult {
  readonly claimed: number;
  readonly submitted: number;
  readonly failed: number;
  /** Whether it stopped claiming because time ran short (ready runs may remain for the next tick). */
  readonly outOfTime: boolean;
}

export async function handler(
  _event: ScheduledEvent | Record<string, unknown>,
  context: Pick<Context, "getRemainingTimeInMillis">,
): Promise<AgentResult> {
  const rt = await runtime("agent", { ecs: true });
  const deadlineMs = Date.now() + context.getRemainingTimeInMillis() - rt.config.safetyMarginMs;
  const result = await rt.agent.pollOnce({ deadlineMs });
  const outOfTime = Date.now() >= deadlineMs;
  for (const failure of result.failed)
    logger.error("run failed to deploy", { runId: failure.runId, reason: failure.reason });
  logger.info("poll done", {
    claimed: result.claimed,
    submitted: result.submitted.length,
    failed: result.failed.length,
    outOfTime,
  });
  return { claimed: result.claimed, submitted: result.submitted.length, failed: result.failed.length, outOfTime };
}
