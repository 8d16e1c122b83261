/**
 * A flow's schedules as its author writes them (`new Flow(name, { schedule }, build)`), checked
 * when the flow is defined and kept as JSON in the manifest: a cron expression in a time zone, or
 * an interval anchored to a fixed instant, so that every agent computes the same ticks.
 */
import { describe } from "../describe.js";
import { FlowDefinitionError } from "../errors.js";
import { toSerializedValue } from "../runner/serialize.js";
import type { JsonValue } from "../runner/serialized.js";
import { cronJob } from "./cron.js";

/** What happens to ticks no agent was polling for (the machine was off, the stack had no agent). */
export type CatchUp = "latest" | "all" | "none";

/** Options every schedule takes. */
interface ScheduleOptions {
  /** A name for the schedule, shown by `tern schedules`. @default derived from the schedule */
  readonly name?: string;
  /** The parameters of the runs it creates; checked against the flow's parameters. @default {} */
  readonly parameters?: Readonly<Record<string, JsonValue>>;
  /** Labels added to the runs it creates. @default [] */
  readonly labels?: readonly string[];
  /**
   * Ticks missed while no agent polled: `"latest"` creates one run for the most recent of them,
   * `"all"` one per tick (at most {@link MAX_CATCH_UP_RUNS}), `"none"` none. @default "latest"
   */
  readonly catchUp?: CatchUp;
}

/** `{ cron: "0 3 * * *", timezone: "Europe/Berlin" }`: five fields, or six with seconds first. */
export interface CronScheduleInput extends ScheduleOptions {
  readonly cron: string;
  /** An IANA time zone name. @default "UTC" */
  readonly timezone?: string;
}

/** `{ every: "15m" }`: a number and a unit (`s`, `m`, `h`, `d`), or several (`"1h30m"`). */
export interface IntervalScheduleInput extends ScheduleOptions {
  readonly every: string;
  /** The instant the ticks count from (ISO 8601 with a zone). @default "1970-01-01T00:00:00Z" */
  readonly anchor?: string;
}

/** The `schedule` option of a flow: one schedule or several. */
export type ScheduleInput = CronScheduleInput | IntervalScheduleInput;

interface ScheduleSpecBase {
  /** Unique within the flow: the `name` given, or one derived from the schedule. */
  readonly name: string;
  readonly catchUp: CatchUp;
  readonly parameters?: Record<string, JsonValue>;
  readonly labels?: string[];
}

/** A checked schedule as the manifest keeps it. */
export type ScheduleSpec =
  | (ScheduleSpecBase & { readonly cron: string; readonly timezone: string })
  | (ScheduleSpecBase & { readonly every: string; readonly everyMs: number; readonly anchor: string });

/** The most runs `catchUp: "all"` creates for the ticks missed at once. */
export const MAX_CATCH_UP_RUNS = 100;

/** Intervals from one second to a year. */
const MIN_EVERY_MS = 1_000;
const MAX_EVERY_MS = 366 * 86_400_000;
const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DEFAULT_ANCHOR = "1970-01-01T00:00:00Z";
const KEYS = new Set(["cron", "timezone", "every", "anchor", "name", "parameters", "labels", "catchUp"]);

/** Checks a flow's `schedule` option; resolves to its schedules as the manifest keeps them. */
export function checkSchedules(flow: string, input: unknown): ScheduleSpec[] {
  const list = Array.isArray(input) ? input : [input];
  const where = (i: number) => `new Flow("${flow}", { schedule })${Array.isArray(input) ? `: schedule ${i + 1}` : ""}`;
  const specs = list.map((item, i) => checkOne(item, where(i)));
  const seen = new Set<string>();
  for (const [i, spec] of specs.entries()) {
    if (seen.has(spec.name)) {
      throw new FlowDefinitionError(
        `${where(i)}: another schedule is named "${spec.name}"; give each a name of its own (name: "...").`,
      );
    }
    seen.add(spec.name);
  }
  return specs;
}

function checkOne(item: unknown, where: string): ScheduleSpec {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw new FlowDefinitionError(
      `${where}: a schedule is an object such as { cron: "0 3 * * *", timezone: "Europe/Berlin" } or { every: "15m" }, got ${describe(item)}.`,
    );
  }
  const fields = item as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!KEYS.has(key)) {
      throw new FlowDefinitionError(`${where}: unknown key "${key}". The keys are ${[...KEYS].join(", ")}.`);
    }
  }
  const hasCron = fields.cron !== undefined;
  if (hasCron === (fields.every !== undefined)) {
    throw new FlowDefinitionError(
      `${where}: give either cron (for example "0 3 * * *") or every (for example "15m"), ${hasCron ? "not both" : "got neither"}.`,
    );
  }
  const base = baseOptions(fields, where);
  if (hasCron) {
    if (fields.anchor !== undefined) throw new FlowDefinitionError(`${where}: anchor goes with every, not with cron.`);
    const cron = checkCron(fields.cron, where);
    const timezone = checkTimezone(fields.timezone, where);
    cronJob(cron, timezone); // croner's own checks of each field
    return {
      name: base.name ?? `cron ${cron}${timezone === "UTC" ? "" : ` ${timezone}`}`,
      ...base.rest,
      cron,
      timezone,
    };
  }
  if (fields.timezone !== undefined) {
    throw new FlowDefinitionError(`${where}: timezone goes with cron; an interval counts real time from its anchor.`);
  }
  const every = fields.every;
  const everyMs = typeof every === "string" ? intervalMs(every) : undefined;
  if (typeof every !== "string" || everyMs === undefined) {
    throw new FlowDefinitionError(
      `${where}: every must be a number and a unit (s, m, h, d), such as "30s", "15m", "1h30m" or "1d", got ${describe(every)}.`,
    );
  }
  if (everyMs < MIN_EVERY_MS || everyMs > MAX_EVERY_MS) {
    throw new FlowDefinitionError(`${where}: every "${every}" must be from 1s to 366d.`);
  }
  const anchor = fields.anchor ?? DEFAULT_ANCHOR;
  if (typeof anchor !== "string" || !/(Z|[+-]\d\d:\d\d)$/.test(anchor) || Number.isNaN(Date.parse(anchor))) {
    throw new FlowDefinitionError(
      `${where}: anchor must be an ISO 8601 instant with its zone, such as "2026-01-01T00:00:00Z", got ${describe(anchor)}.`,
    );
  }
  return { name: base.name ?? `every ${every}`, ...base.rest, every, everyMs, anchor: new Date(anchor).toISOString() };
}

/** The interval's length in milliseconds, or undefined when `text` is not one. */
export function intervalMs(text: string): number | undefined {
  if (!/^(\d+[smhd])+$/.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)([smhd])/g))
    total += Number(amount) * (UNIT_MS[unit as string] ?? 0);
  return total;
}

function checkCron(value: unknown, where: string): string {
  const cron = typeof value === "string" ? value.trim() : undefined;
  const fields = cron?.split(/\s+/).length ?? 0;
  if (cron === undefined || (!cron.startsWith("@") && fields !== 5 && fields !== 6)) {
    throw new FlowDefinitionError(
      `${where}: cron must be five fields (minute hour day-of-month month day-of-week, such as "0 3 * * *"), six with seconds first, or a nickname such as "@daily", got ${describe(value)}.`,
    );
  }
  try {
    cronJob(cron, "UTC");
  } catch (error) {
    throw new FlowDefinitionError(`${where}: cron "${cron}" is not a valid expression: ${(error as Error).message}.`);
  }
  return cron;
}

function checkTimezone(value: unknown, where: string): string {
  if (value === undefined) return "UTC";
  try {
    if (typeof value !== "string") throw new RangeError("not a string");
    // Throws RangeError for a zone the runtime does not know.
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return value;
  } catch {
    throw new FlowDefinitionError(
      `${where}: timezone ${describe(value)} is not an IANA time zone name; use one such as "Europe/Berlin", "America/New_York" or "UTC".`,
    );
  }
}

function baseOptions(
  fields: Record<string, unknown>,
  where: string,
): { name?: string; rest: Omit<ScheduleSpecBase, "name"> } {
  const { name, parameters, labels, catchUp = "latest" } = fields;
  if (name !== undefined && (typeof name !== "string" || name.trim() === "" || name.length > 100)) {
    throw new FlowDefinitionError(
      `${where}: name must be a non-empty string of at most 100 characters, got ${describe(name)}.`,
    );
  }
  if (catchUp !== "latest" && catchUp !== "all" && catchUp !== "none") {
    throw new FlowDefinitionError(`${where}: catchUp must be "latest", "all" or "none", got ${describe(catchUp)}.`);
  }
  if (
    parameters !== undefined &&
    (typeof parameters !== "object" || parameters === null || Array.isArray(parameters))
  ) {
    throw new FlowDefinitionError(
      `${where}: parameters must be an object of values by name, got ${describe(parameters)}.`,
    );
  }
  const values: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries((parameters ?? {}) as Record<string, unknown>)) {
    const stored = toSerializedValue(value);
    if (stored.kind !== "json") {
      throw new FlowDefinitionError(
        `${where}: parameter "${key}" must be a JSON value (the manifest keeps it), got ${describe(value)}.`,
      );
    }
    values[key] = stored.value;
  }
  if (
    labels !== undefined &&
    (!Array.isArray(labels) || labels.some((l) => typeof l !== "string" || l.trim() === "" || l.trim() !== l))
  ) {
    throw new FlowDefinitionError(
      `${where}: labels must be a list of non-empty strings without surrounding spaces, got ${describe(labels)}.`,
    );
  }
  return {
    ...(name === undefined ? {} : { name: name as string }),
    rest: {
      catchUp,
      ...(parameters === undefined ? {} : { parameters: values }),
      ...(labels === undefined || labels.length === 0 ? {} : { labels: [...(labels as string[])] }),
    },
  };
}
