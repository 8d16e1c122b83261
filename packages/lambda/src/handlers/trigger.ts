/**
 * Event triggers: EventBridge events (an S3 `Object Created`, a custom event) matched against
 * the trigger rules; each matching rule starts a run keyed by the event's id and dispatches it
 * at once. EventBridge delivers at least once: a redelivered event finds the run it started.
 * Each launch takes a deadline: the invocation's end minus `TERN_SAFETY_MARGIN_MS`; a run not
 * launched by then stays for the agent's next tick.
 */
import type { EventBridgeEvent } from "aws-lambda";
import { matchingRules } from "../rules.js";
import { logger, runtime } from "../runtime.js";
import { startRuns, type TriggeredRun } from "../trigger-runs.js";

export interface TriggerResult {
  readonly status: "started" | "unmatched" | "rejected";
  readonly eventId?: string;
  readonly runs: readonly TriggeredRun[];
  readonly reason?: string;
}

export async function handler(
  event: EventBridgeEvent<string, unknown>,
  context?: { getRemainingTimeInMillis(): number },
): Promise<TriggerResult> {
  const rt = await runtime("trigger", { ecs: true, rules: true });
  if (
    typeof event !== "object" ||
    event === null ||
    typeof event.id !== "string" ||
    event.id === "" ||
    typeof event.source !== "string"
  ) {
    // Not an EventBridge event: nothing to key a run on. Retrying would not help.
    logger.error("rejected an event that is not an EventBridge event (no id or source)", {
      event: JSON.stringify(event)?.slice(0, 500),
    });
    return { status: "rejected", runs: [], reason: "not an EventBridge event: it needs a string id and source" };
  }
  const rules = matchingRules(rt.rules, event);
  if (rules.length === 0) {
    logger.info("no trigger rule matches the event", {
      eventId: event.id,
      source: event.source,
      detailType: event["detail-type"],
    });
    return { status: "unmatched", eventId: event.id, runs: [] };
  }
  const deadlineMs =
    context === undefined ? undefined : Date.now() + context.getRemainingTimeInMillis() - rt.config.safetyMarginMs;
  const runs = await startRuns(rt, rules, event, `eventbridge:${event.id}`, {
    ...(deadlineMs === undefined ? {} : { deadlineMs }),
  });
  return { status: "started", eventId: event.id, runs };
}
