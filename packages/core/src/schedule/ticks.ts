/**
 * When a schedule ticks, computed from its JSON alone (no clock, no I/O): every agent given the
 * same schedule and the same instants gets the same ticks, which is what lets any number of them
 * create each tick's run once (the tick is part of the run's idempotency key).
 */
import { cronJob } from "./cron.js";
import { MAX_CATCH_UP_RUNS, type ScheduleSpec } from "./definition.js";

/** The first `count` ticks strictly after `afterMs` (epoch ms), in order. */
export function ticksAfter(spec: ScheduleSpec, afterMs: number, count: number): number[] {
  if (count <= 0) return [];
  if ("every" in spec) {
    const anchor = Date.parse(spec.anchor);
    const first = anchor + (Math.floor((afterMs - anchor) / spec.everyMs) + 1) * spec.everyMs;
    return Array.from({ length: count }, (_, i) => first + i * spec.everyMs);
  }
  return cronJob(spec.cron, spec.timezone)
    .nextRuns(count, new Date(afterMs))
    .map((date) => date.getTime());
}

/** The ticks in `(afterMs, untilMs]`, at most `max` of them (the earliest). */
export function ticksBetween(spec: ScheduleSpec, afterMs: number, untilMs: number, max: number): number[] {
  const found: number[] = [];
  let from = afterMs;
  while (found.length < max) {
    const batch = ticksAfter(spec, from, Math.min(100, max - found.length));
    for (const tick of batch) {
      if (tick > untilMs) return found;
      found.push(tick);
    }
    const last = batch.at(-1);
    if (last === undefined) return found;
    from = last;
  }
  return found;
}

/** The newest `count` ticks in `(afterMs, untilMs]`, oldest first. */
export function newestTicks(spec: ScheduleSpec, afterMs: number, untilMs: number, count: number): number[] {
  if (count <= 0 || untilMs <= afterMs) return [];
  let ticks: number[];
  if ("every" in spec) {
    const anchor = Date.parse(spec.anchor);
    const last = anchor + Math.floor((untilMs - anchor) / spec.everyMs) * spec.everyMs;
    ticks = Array.from({ length: count }, (_, i) => last - (count - 1 - i) * spec.everyMs);
  } else {
    // croner counts back from an exclusive reference: one millisecond later includes `untilMs`.
    ticks = cronJob(spec.cron, spec.timezone)
      .previousRuns(count, new Date(untilMs + 1))
      .map((date) => date.getTime())
      .reverse();
  }
  return ticks.filter((tick) => tick > afterMs);
}

/** What an agent's poll should do about one schedule. */
export interface DueTicks {
  /** Ticks already past that no run covers, after the catch-up policy: create their runs now. */
  readonly missed: readonly number[];
  /** Ticks to come within the window: create their runs ahead, due at the tick. */
  readonly ahead: readonly number[];
  /** Ticks past that the policy skipped (for the poll's log). */
  readonly skipped: number;
  /** Where the next poll starts: every tick up to here is decided. */
  readonly coveredUntilMs: number;
}

/**
 * The ticks of `spec` to create runs for: those in `(coveredUntilMs, nowMs + aheadMs]`, the past
 * ones after the schedule's catch-up policy (a tick within `graceMs` of now is on time, not
 * missed: an agent that polls every minute creates it then).
 */
export function dueTicks(
  spec: ScheduleSpec,
  at: { readonly coveredUntilMs: number; readonly nowMs: number; readonly aheadMs: number; readonly graceMs: number },
): DueTicks {
  const until = at.nowMs + at.aheadMs;
  const ahead = ticksBetween(spec, Math.max(at.coveredUntilMs, at.nowMs), until, MAX_CATCH_UP_RUNS);
  const onTimeFrom = at.nowMs - at.graceMs;
  // Never backwards: an agent with a shorter window than the one that covered the ticks so far.
  const coveredUntilMs =
    ahead.length === MAX_CATCH_UP_RUNS ? (ahead.at(-1) as number) : Math.max(until, at.coveredUntilMs);
  if (at.coveredUntilMs >= at.nowMs) return { missed: [], ahead, skipped: 0, coveredUntilMs };
  // Past ticks: the on-time ones always, the late ones as the policy says.
  const onTime = ticksBetween(spec, Math.max(at.coveredUntilMs, onTimeFrom), at.nowMs, MAX_CATCH_UP_RUNS);
  const lateUntil = Math.min(onTimeFrom, at.nowMs);
  let late: number[] = [];
  let skipped = 0;
  if (at.coveredUntilMs < lateUntil) {
    const keep = spec.catchUp === "all" ? MAX_CATCH_UP_RUNS : spec.catchUp === "latest" ? 1 : 0;
    late = newestTicks(spec, at.coveredUntilMs, lateUntil, keep);
    skipped = countUpTo(spec, at.coveredUntilMs, lateUntil) - late.length;
  }
  return { missed: [...late, ...onTime], ahead, skipped, coveredUntilMs };
}

/** How many ticks fall in `(afterMs, untilMs]` (for the log; a cron's counted up to 10,000). */
function countUpTo(spec: ScheduleSpec, afterMs: number, untilMs: number): number {
  if ("every" in spec) {
    const anchor = Date.parse(spec.anchor);
    return Math.floor((untilMs - anchor) / spec.everyMs) - Math.floor((afterMs - anchor) / spec.everyMs);
  }
  return ticksBetween(spec, afterMs, untilMs, 10_000).length;
}
