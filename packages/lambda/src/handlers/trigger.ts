/**
 * Event triggers: EventBridge events (an S3 `Object Created`, a custom event) that a trigger
 * rule's pattern matches, each rule in the stack an EventBridge rule of its own that names itself
 * to this handler (events without a name are matched against the rules here); each matching rule
 * starts a run keyed by the event's id and dispatches it at once. EventBridge delivers at least once: a redelivered event finds the run it started.
 * Each launch takes a deadline: the invocation's end minus `TERN_SAFETY_MARGIN_MS`; a run not
 * launched by then stays for the agent's next tick.
 */
import type { EventBridgeEvent } from "aws-lambda";
import { parseTriggerInput, type RuleMatchedEvent, type TriggerEvent } from "../events.js";
import { matchingRules, type TriggerRule } from "../rules.js";
import { logger, runtime } from "../runtime.js";
import { startRuns, type TriggeredRun } from "../trigger-runs.js";

export interface TriggerResult {
  readonly status: "started" | "unmatched" | "rejected";
  readonly eventId?: string;
  readonly runs: readonly TriggeredRun[];
  readonly reason?: string;
}

export async function handler(
  input: EventBridgeEvent<string, unknown> | RuleMatchedEvent,
  context?: { getRemainingTimeInMillis(): number },
): Promise<TriggerResult> {
  const rt = await runtime("trigger", { ecs: true, rules: true });
  const parsed = parseTriggerInput(input);
  if (!parsed.ok) {
    // Not an EventBridge event: nothing to key a run on. Retrying would not help.
    logger.error("rejected an event that is not an EventBridge event", {
      reason: parsed.reason,
      event: JSON.stringify(input)?.slice(0, 500),
    });
    return { status: "rejected", runs: [], reason: parsed.reason };
  }
  const { event } = parsed;
  const rules = rulesFor(rt.rules, event, parsed.rule);
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

/**
 * The rules whose runs an event starts: the one EventBridge matched, when the stack's rule names
 * it (EventBridge matched the pattern already: it is not matched again); else every rule whose
 * pattern matches here (an event from a stack before rules named themselves, or a name no rule
 * has any longer).
 */
function rulesFor(all: readonly TriggerRule[], event: TriggerEvent, name: string | undefined): TriggerRule[] {
  const named = name === undefined ? undefined : all.find((rule) => rule.name === name);
  if (named !== undefined) {
    logger.debug("EventBridge matched the event to a rule; not matched again", { eventId: event.id, rule: name });
    return [named];
  }
  if (name !== undefined) logger.warn("the event names a rule there is none of; matched here", { rule: name });
  else logger.debug("the event came without the name of its rule; matched here", { eventId: event.id });
  return matchingRules(all, event);
}
