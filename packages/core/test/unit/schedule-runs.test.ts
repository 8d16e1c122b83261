import { join } from "node:path";
import { cancelSupersededRuns, createScheduledRuns, SqliteBackend, scheduleOfRun } from "@tern/core/runtime";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nightly } from "../fixtures/scheduled-flows.js";

const home = useTempTernHome("tern-schedule-runs-");
let agents: SqliteBackend[];
beforeEach(async () => {
  // Two agents: two connections to one state file, as two processes would have.
  const path = join(home.path, "state", "tern.db");
  agents = [await SqliteBackend.open({ path }), await SqliteBackend.open({ path })];
});
afterEach(async () => {
  for (const backend of agents) await backend.close();
});

/**
 * An instant one minute before a quarter hour, at least `fromNowMs` from now: the "every 15m"
 * schedule has a tick within the three minutes an agent creates runs ahead for.
 */
function beforeAQuarter(fromNowMs: number): number {
  return Math.ceil((Date.now() + fromNowMs + 61_000) / 900_000) * 900_000 - 60_000;
}

/** The "every 15m" schedule's runs, by tick. */
async function quarterRuns(backend: SqliteBackend): Promise<Map<number, number>> {
  const runs = await backend.listRuns({ project: "sched", flow: "nightly", limit: 1000 });
  const byTick = new Map<number, number>();
  for (const run of runs) {
    if (run.parameters.n !== 5) continue;
    byTick.set(run.scheduledAtMs, (byTick.get(run.scheduledAtMs) ?? 0) + 1);
  }
  return byTick;
}

describe("the runs an agent's poll creates for schedules", () => {
  it("creates each tick's run once, however many agents poll side by side", async () => {
    const [a, b] = agents as [SqliteBackend, SqliteBackend];
    await nightly.register("sched", { backend: a });
    const start = Date.now();
    // Twenty polls a minute apart, each made by both agents at once.
    for (let minute = 0; minute < 20; minute++) {
      const nowMs = start + minute * 60_000;
      await Promise.all([createScheduledRuns(a, { nowMs }), createScheduledRuns(b, { nowMs })]);
    }
    const byTick = await quarterRuns(a);
    const some = (await a.listRuns({ project: "sched", flow: "nightly", limit: 1 }))[0];
    expect(some === undefined ? undefined : scheduleOfRun(some)).toMatch(
      /^(every 15m|cron 0 3 \* \* \* Europe\/Berlin)$/,
    );
    expect(scheduleOfRun({ flow: "nightly", version: 1, idempotencyKey: "event-42" })).toBe(undefined);
    expect([...byTick.values()].every((count) => count === 1)).toBe(true);
    // Every quarter hour from registration to 20 minutes plus the 3 ahead, none missing.
    const first = Math.floor(start / 900_000) * 900_000 + 900_000;
    const expected = [];
    for (let tick = first; tick <= start + 19 * 60_000 + 180_000; tick += 900_000) expected.push(tick);
    expect([...byTick.keys()].sort()).toEqual(expected);
    const runs = await a.listRuns({ project: "sched", flow: "nightly", limit: 1000 });
    expect(runs.filter((r) => r.parameters.n === 5).every((r) => r.scheduledAtMs > r.createdAtMs - 1)).toBe(true);
  });

  it("after a gap with no agent, catches up by the schedule's policy", async () => {
    const [a] = agents as [SqliteBackend];
    await nightly.register("sched", { backend: a });
    const [quarter] = (await a.listSchedules("sched")).filter((s) => s.spec.name === "every 15m");
    if (quarter === undefined) throw new Error("no schedule");
    // The "every 15m" schedule says catchUp: "none"; the daily one the default, "latest".
    const later = quarter.coveredUntilMs + 3 * 86_400_000;
    const { created, skipped } = await createScheduledRuns(a, { nowMs: later });
    const runs = await a.listRuns({ project: "sched", flow: "nightly", limit: 1000 });
    const daily = runs.filter((r) => r.parameters.n === undefined);
    const missedDaily = daily.filter((r) => r.scheduledAtMs <= later - 120_000);
    expect(missedDaily).toHaveLength(1);
    expect(runs.filter((r) => r.parameters.n === 5 && r.scheduledAtMs <= later - 120_000)).toEqual([]);
    expect(skipped).toBeGreaterThan(3 * 96 - 10);
    expect(created).toHaveLength(runs.length);
  });

  it("creates nothing for a paused flow, and picks up from where it was when resumed", async () => {
    const [a] = agents as [SqliteBackend];
    await nightly.register("sched", { backend: a });
    await a.setSchedulesPaused("sched", "nightly", true);
    expect((await createScheduledRuns(a, { nowMs: beforeAQuarter(3_600_000) })).created).toEqual([]);
    await a.setSchedulesPaused("sched", "nightly", false);
    expect((await createScheduledRuns(a, { nowMs: beforeAQuarter(3_600_000) })).created.length).toBeGreaterThan(0);
  });

  it("names the tick in each run's idempotency key, so a second poll at the same instant creates nothing", async () => {
    const [a] = agents as [SqliteBackend];
    await nightly.register("sched", { backend: a });
    const nowMs = beforeAQuarter(3_600_000);
    const before = await a.listSchedules("sched");
    const first = await createScheduledRuns(a, { nowMs });
    // As if a second agent's poll had read the schedules before the first one advanced them.
    for (const state of await a.listSchedules("sched")) {
      const old = before.find((b) => b.spec.name === state.spec.name);
      await a.advanceSchedule({
        project: state.project,
        flow: state.flow,
        name: state.spec.name,
        expectedRevision: state.revision,
        coveredUntilMs: old?.coveredUntilMs ?? 0,
        nextTickMs: old?.nextTickMs ?? 0,
      });
    }
    const again = await createScheduledRuns(a, { nowMs });
    expect(first.created.length).toBeGreaterThan(0);
    expect(again.created).toEqual([]);
  });

  it("cancels the runs an older version created ahead when a new version is registered", async () => {
    const [a] = agents as [SqliteBackend];
    const { version } = await nightly.register("sched", { backend: a });
    const { created } = await createScheduledRuns(a, { nowMs: beforeAQuarter(0) });
    expect(created.length).toBeGreaterThan(0);
    // Nothing is cancelled by a registration of the same version.
    expect(await cancelSupersededRuns(a, { project: "sched", flow: "nightly", version })).toEqual([]);
    const cancelled = await cancelSupersededRuns(a, { project: "sched", flow: "nightly", version: version + 1 });
    expect(cancelled.sort()).toEqual([...created].sort());
    for (const id of cancelled) {
      expect(await a.getRun(id)).toMatchObject({
        state: "Cancelled",
        reason: `replaced: version ${version + 1} of the flow was registered before this tick`,
      });
    }
  });
});
