/**
 * How a registration changes a flow's schedule states (pure: both backends apply the same
 * decision). A schedule kept with the same version and definition keeps its progress; a new or
 * changed one starts covered up to the registration; a paused flow stays paused.
 */
import type { ScheduleState } from "../backend/types.js";
import type { ScheduleSpec } from "./definition.js";
import { ticksAfter } from "./ticks.js";

/** `nextTickMs` of a schedule that never ticks again. */
export const NEVER_MS = Number.MAX_SAFE_INTEGER;

/** The first tick after `afterMs`, or {@link NEVER_MS}. */
export function nextTickAfter(spec: ScheduleSpec, afterMs: number): number {
  return ticksAfter(spec, afterMs, 1)[0] ?? NEVER_MS;
}

/** What to write and delete so that `existing` follows the version's `specs`. */
export interface ScheduleChanges {
  readonly put: readonly ScheduleState[];
  /** Names of states to delete. */
  readonly remove: readonly string[];
}

export function scheduleChanges(
  flow: { readonly project: string; readonly flow: string; readonly version: number },
  specs: readonly ScheduleSpec[],
  existing: readonly ScheduleState[],
  nowMs: number,
): ScheduleChanges {
  const byName = new Map(existing.map((state) => [state.spec.name, state]));
  const paused = existing.some((state) => state.paused);
  const put: ScheduleState[] = [];
  for (const spec of specs) {
    const old = byName.get(spec.name);
    if (old !== undefined && old.version === flow.version && sameSpec(old.spec, spec)) continue;
    put.push({
      ...flow,
      spec,
      coveredUntilMs: nowMs,
      nextTickMs: nextTickAfter(spec, nowMs),
      paused,
      revision: (old?.revision ?? 0) + 1,
    });
  }
  const names = new Set(specs.map((spec) => spec.name));
  return { put, remove: existing.filter((state) => !names.has(state.spec.name)).map((state) => state.spec.name) };
}

function sameSpec(a: ScheduleSpec, b: ScheduleSpec): boolean {
  return sorted(a) === sorted(b);
}

/** JSON with every object's keys in order, so that equal schedules compare equal. */
function sorted(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : v,
  );
}
