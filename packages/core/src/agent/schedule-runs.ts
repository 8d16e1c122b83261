/**
 * The schedule work of an agent's poll: create the runs of the ticks coming due, each with an
 * idempotency key naming its flow version, schedule and tick, so that any number of agents
 * polling side by side create each tick's run once. Runs are created ahead (up to `aheadMs`),
 * with `scheduledAtMs` at the tick: claims take a run only once its tick has come.
 */
import type { AdvancedSchedule, Backend, ScheduleState } from "../backend/types.js";
import { isTernError } from "../errors.js";
import { nextTickAfter } from "../schedule/state.js";
import { dueTicks } from "../schedule/ticks.js";

/** The most runs are created ahead: an agent polling every minute (the Lambda) launches them on time. */
export const SCHEDULE_AHEAD_MS = 3 * 60_000;
/** The longest a tick stays on time, whatever the catch-up policy (for an agent polling every minute). */
export const SCHEDULE_GRACE_MS = 2 * 60_000;

/**
 * The windows of an agent that polls every `pollIntervalMs`: runs are created five polls ahead
 * (10 s to 3 minutes), and a tick missed by up to two polls (5 s to 2 minutes) is on time,
 * whatever the catch-up policy. A local agent polling every 2 s thus creates a few runs ahead and
 * applies `catchUp` to what it missed while stopped; the Lambda, polling every minute, creates
 * three minutes ahead. Agents with different windows side by side still create each run once
 * (the tick is in its key).
 */
export function scheduleWindows(pollIntervalMs: number): { readonly aheadMs: number; readonly graceMs: number } {
  const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value));
  return {
    aheadMs: clamp(5 * pollIntervalMs, 10_000, SCHEDULE_AHEAD_MS),
    graceMs: clamp(2 * pollIntervalMs, 5_000, SCHEDULE_GRACE_MS),
  };
}
/** Schedules handled in one poll, soonest first; the rest wait for the next poll. */
export const SCHEDULES_PER_POLL = 200;

/** What the schedule work of one poll did. */
export interface ScheduledRuns {
  /** Ids of the runs created (a run another agent created first is not listed). */
  readonly created: readonly string[];
  /** Ticks the catch-up policies skipped. */
  readonly skipped: number;
}

/** The idempotency key of a tick's run: one run per flow version, schedule and tick instant. */
export function scheduleRunKey(state: ScheduleState, tickMs: number): string {
  return `schedule:${state.flow}:v${state.version}:${state.spec.name}:${new Date(tickMs).toISOString()}`;
}

/** The name of the schedule that created `run`, read from its idempotency key; undefined for other runs. */
export function scheduleOfRun(run: {
  readonly flow: string;
  readonly version: number;
  readonly idempotencyKey?: string;
}): string | undefined {
  const prefix = `schedule:${run.flow}:v${run.version}:`;
  const key = run.idempotencyKey;
  // The key ends with ":" and the tick as an ISO instant (24 characters).
  if (key === undefined || !key.startsWith(prefix) || key.length <= prefix.length + 25) return undefined;
  return key.slice(prefix.length, -25);
}

/** Creates the runs of the schedules coming due by `nowMs + aheadMs`, and moves their cursors past them. */
export async function createScheduledRuns(
  backend: Backend,
  options: {
    readonly nowMs?: number;
    readonly aheadMs?: number;
    readonly graceMs?: number;
    readonly log?: (line: string) => void;
  } = {},
): Promise<ScheduledRuns> {
  const nowMs = options.nowMs ?? Date.now();
  const aheadMs = options.aheadMs ?? SCHEDULE_AHEAD_MS;
  const graceMs = options.graceMs ?? SCHEDULE_GRACE_MS;
  const log = options.log ?? (() => {});
  const created: string[] = [];
  let skipped = 0;
  for (const state of await backend.listDueSchedules({ untilMs: nowMs + aheadMs, limit: SCHEDULES_PER_POLL })) {
    const { spec } = state;
    const due = dueTicks(spec, { coveredUntilMs: state.coveredUntilMs, nowMs, aheadMs, graceMs });
    let advanced: AdvancedSchedule;
    try {
      // The runs and the cursor in one write: a lost race (another agent advanced it first)
      // writes nothing, and that agent created the same runs (their keys).
      advanced = await backend.advanceSchedule({
        project: state.project,
        flow: state.flow,
        name: spec.name,
        expectedRevision: state.revision,
        coveredUntilMs: due.coveredUntilMs,
        nextTickMs: nextTickAfter(spec, due.coveredUntilMs),
        runs: {
          version: state.version,
          parameters: spec.parameters ?? {},
          ...(spec.labels === undefined ? {} : { labels: spec.labels }),
          ticks: [...due.missed, ...due.ahead].map((tickMs) => ({
            scheduledAtMs: tickMs,
            idempotencyKey: scheduleRunKey(state, tickMs),
          })),
        },
      });
    } catch (error) {
      // One schedule's trouble (its version gone, say) does not hold up the others or the claims.
      if (!isTernError(error)) throw error;
      log(`schedule "${spec.name}" of ${state.project}/${state.flow}: ${error.message}`);
      continue;
    }
    created.push(...advanced.created.map((run) => run.id));
    if (advanced.advanced && due.skipped > 0) {
      skipped += due.skipped;
      log(
        `schedule "${spec.name}" of ${state.project}/${state.flow}: ${due.skipped} missed tick(s) skipped (catchUp: ${spec.catchUp})`,
      );
    }
  }
  return { created, skipped };
}

/**
 * Cancels the runs an older version's schedules created ahead that have not started: after a
 * registration of `version`, its own schedules create the ticks to come. Resolves their ids.
 */
export async function cancelSupersededRuns(
  backend: Backend,
  flow: { readonly project: string; readonly flow: string; readonly version: number },
  nowMs: number = Date.now(),
): Promise<string[]> {
  const prefix = `schedule:${flow.flow}:v`;
  const cancelled: string[] = [];
  const runs = await backend.listRuns({ project: flow.project, flow: flow.flow, state: "Scheduled", limit: 1000 });
  for (const run of runs) {
    if (run.version >= flow.version || run.scheduledAtMs <= nowMs || !run.idempotencyKey?.startsWith(prefix)) continue;
    try {
      await backend.transitionRun({
        runId: run.id,
        expectedRevision: run.revision,
        to: "Cancelled",
        reason: `replaced: version ${flow.version} of the flow was registered before this tick`,
      });
      cancelled.push(run.id);
    } catch (error) {
      // Claimed or cancelled meanwhile: it is not waiting any more.
      if (!isTernError(error, "RUN_CONFLICT")) throw error;
    }
  }
  return cancelled;
}
