/**
 * The EventBridge events the handlers take, checked with Powertools' `EventBridgeSchema` (the
 * envelope every EventBridge event has: version, id, source, account, time, region, resources,
 * detail-type, detail).
 */
import { EventBridgeSchema } from "@aws-lambda-powertools/parser/schemas/eventbridge";
import { z } from "zod";

/** An event that can start runs: an EventBridge event with an id to key them on. */
export const TriggerEventSchema = EventBridgeSchema.extend({ id: z.string().min(1) });
export type TriggerEvent = z.infer<typeof TriggerEventSchema>;

/**
 * What the stack's EventBridge rule for one trigger rule sends its target (an input
 * transformer): the name of the trigger rule EventBridge matched, and the event.
 */
export const RuleMatchedEventSchema = z.object({ rule: z.string().min(1), event: TriggerEventSchema });
export type RuleMatchedEvent = z.infer<typeof RuleMatchedEventSchema>;

/** The `ECS Task State Change` event of one task (its detail is the task, as DescribeTasks gives it). */
export const TaskStateChangeSchema = EventBridgeSchema.extend({
  "detail-type": z.literal("ECS Task State Change"),
  detail: z.looseObject({ taskArn: z.string() }),
});
export type TaskStateChange = z.infer<typeof TaskStateChangeSchema>;

/** A checked event, or why it is not one. */
export type Parsed<T> = { readonly ok: true; readonly event: T } | { readonly ok: false; readonly reason: string };

/** Zod's issues on one line, each at its path: for a log line and a handler's `reason`. */
function problemsOf(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
    .join("; ");
}

/**
 * Reads a task-state handler's input. The event as it came is what the handler uses (the
 * schema's copy drops fields it does not name); the schema only says that it is one.
 */
export function parseTaskStateChange(input: unknown): Parsed<TaskStateChange> {
  const checked = TaskStateChangeSchema.safeParse(input);
  if (checked.success) return { ok: true, event: input as TaskStateChange };
  return { ok: false, reason: `not an ECS Task State Change event: ${problemsOf(checked.error)}` };
}

/** A trigger handler's input: the event, and the rule EventBridge matched when the stack says. */
export type TriggerInput =
  | { readonly ok: true; readonly event: TriggerEvent; readonly rule?: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads a trigger handler's input: a {@link RuleMatchedEvent} (the stack's rules name theirs), or
 * a bare EventBridge event (a stack from before rules named themselves, or another sender).
 */
export function parseTriggerInput(input: unknown): TriggerInput {
  // The event as it came (not the schema's copy, which drops fields it does not name), once checked.
  const matched = RuleMatchedEventSchema.safeParse(input);
  if (matched.success) return { ok: true, event: (input as RuleMatchedEvent).event, rule: matched.data.rule };
  const bare = TriggerEventSchema.safeParse(input);
  if (bare.success) return { ok: true, event: input as TriggerEvent };
  const noKey = bare.error.issues.some((issue) => issue.path[0] === "id" || issue.path[0] === "source");
  return {
    ok: false,
    reason: `not an EventBridge event: ${noKey ? "it needs a string id and source" : problemsOf(bare.error)}`,
  };
}
