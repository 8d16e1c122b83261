import { isTernError, TernError } from "@tern/core";
import type { JsonValue } from "@tern/core/plugin";
import * as z from "zod/mini";
// The English locale alone: the locales index loads every language (about 60 modules).
import en from "zod/v4/locales/en.js";
import { compilePattern, type EventPattern } from "./pattern.js";

// zod/mini carries no messages of its own ("Invalid input" for everything) until a locale is loaded.
z.config(en());

/**
 * A trigger rule as written (JSON): when an event matches `pattern` (EventBridge's event-pattern
 * syntax, so the stack can use it as the EventBridge rule's pattern too), a run of `flow` starts,
 * with `parameters` picked out of the event by path (`$.detail.object.key`).
 */
export interface TriggerRuleInput {
  /** For logs and replies. @default the flow's name */
  readonly name?: string;
  readonly flow: string;
  /** @default "default" */
  readonly project?: string;
  readonly pattern: Readonly<Record<string, unknown>>;
  readonly parameters?: Readonly<Record<string, string>>;
}

/** A rule ready to match. */
export interface TriggerRule {
  readonly name: string;
  readonly flow: string;
  readonly project: string;
  readonly pattern: EventPattern;
  readonly parameters: Readonly<Record<string, string>>;
}

const PATH = /^\$(\.[A-Za-z0-9_-]+|\[\d+\]|\["[^"]+"\])*$/;

const ruleSchema = z.strictObject({
  name: z.optional(z.string().check(z.minLength(1))),
  flow: z.string().check(z.minLength(1)),
  project: z.optional(z.string().check(z.minLength(1))),
  pattern: z.record(z.string(), z.unknown()),
  parameters: z.optional(
    z.record(
      z.string(),
      z
        .string()
        .check(z.regex(PATH, 'must be a path into the event such as "$.detail.object.key" or "$.resources[0]"')),
    ),
  ),
});

/** A rule list that cannot work. */
export class RulesError extends TernError {
  constructor(message: string) {
    super("RULES", message);
    // Named here, not from the class: a minified bundle renames classes.
    this.name = "RulesError";
  }
}

/** Parses and compiles trigger rules (a JSON array), naming the rule and the field of any problem. */
export function parseRules(json: string, where: string): TriggerRule[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new RulesError(`Trigger rules in ${where} are not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(raw))
    throw new RulesError(`Trigger rules in ${where} must be a JSON array of rules, got ${typeof raw}.`);
  const rules = raw.map((entry, i): TriggerRule => {
    const parsed = z.safeParse(ruleSchema, entry);
    const label = `rule ${i}${typeof (entry as { name?: unknown })?.name === "string" ? ` ("${(entry as { name: string }).name}")` : ""} in ${where}`;
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(rule)"}: ${issue.message}`);
      throw new RulesError(`Trigger ${label}: ${issues.join("; ")}.`);
    }
    let pattern: EventPattern;
    try {
      pattern = compilePattern(parsed.data.pattern);
    } catch (error) {
      if (isTernError(error, "PATTERN")) throw new RulesError(`Trigger ${label}: ${error.message}`);
      throw error;
    }
    return {
      name: parsed.data.name ?? parsed.data.flow,
      flow: parsed.data.flow,
      project: parsed.data.project ?? "default",
      pattern,
      parameters: parsed.data.parameters ?? {},
    };
  });
  const seen = new Set<string>();
  for (const rule of rules) {
    if (seen.has(rule.name)) {
      throw new RulesError(
        `Trigger rules in ${where}: two rules are named "${rule.name}" (a rule's name defaults to its flow). Give each rule its own name: runs are keyed by event and rule name.`,
      );
    }
    seen.add(rule.name);
  }
  return rules;
}

/** The value at `path` (`$.a.b[0]["c d"]`) in `value`, or undefined. */
export function pick(value: unknown, path: string): unknown {
  const steps = path.slice(1).match(/\.[A-Za-z0-9_-]+|\[\d+\]|\["[^"]+"\]/g) ?? [];
  let current: unknown = value;
  for (const step of steps) {
    if (current === null || typeof current !== "object") return undefined;
    const key = step.startsWith(".")
      ? step.slice(1)
      : step.startsWith('["')
        ? step.slice(2, -2)
        : Number(step.slice(1, -1));
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

/** The run parameters a rule picks out of an event; paths that find nothing are left out (the flow's defaults apply). */
export function ruleParameters(rule: TriggerRule, event: unknown): Record<string, JsonValue> {
  const parameters: Record<string, JsonValue> = {};
  for (const [name, path] of Object.entries(rule.parameters)) {
    const value = pick(event, path);
    if (value !== undefined) parameters[name] = value as JsonValue;
  }
  return parameters;
}

/** The rules an event matches, in order. */
export function matchingRules(rules: readonly TriggerRule[], event: unknown): TriggerRule[] {
  return rules.filter((rule) => rule.pattern.test(event));
}
