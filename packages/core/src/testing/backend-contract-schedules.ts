import { describe, expect, it } from "vitest";
import type { ScheduleState } from "../backend/types.js";
import type { ScheduleSpec } from "../schedule/definition.js";
import type { ContractContext } from "./backend-contract-context.js";
import { manifestHash } from "./backend-contract-runs.js";

/** An interval schedule as a manifest keeps it. */
function every(name: string, seconds: number): ScheduleSpec {
  return {
    name,
    catchUp: "latest",
    every: `${seconds}s`,
    everyMs: seconds * 1000,
    anchor: "1970-01-01T00:00:00.000Z",
  };
}

const HOUR = 3_600_000;

/** Schedule states: what registrations set, what polls read and advance, pausing. Part of `backendContract`. */
export function scheduleContract(context: () => ContractContext): void {
  describe("schedules", () => {
    const mine = async (c: ContractContext, untilMs = Date.now() + 2 * HOUR): Promise<ScheduleState[]> =>
      (await c.backend.listDueSchedules({ untilMs, limit: 1000 })).filter((s) => s.project === c.project);

    it("keeps the schedules a registration gives, covered up to it, with their next tick", async () => {
      const c = context();
      const before = Date.now();
      const { version } = await c.backend.registerFlowVersion(
        c.version("etl", { schedules: [every("minutely", 60), every("hourly", 3600)] }),
      );
      const states = await c.backend.listSchedules(c.project);
      expect(states.map((s) => s.spec.name)).toEqual(["hourly", "minutely"]);
      for (const state of states) {
        expect(state).toMatchObject({ project: c.project, flow: "etl", version: version.version, paused: false });
        expect(state.coveredUntilMs).toBeGreaterThanOrEqual(before);
        expect(state.coveredUntilMs).toBeLessThanOrEqual(Date.now());
        expect(state.nextTickMs).toBeGreaterThan(state.coveredUntilMs);
        expect(state.nextTickMs % ("everyMs" in state.spec ? state.spec.everyMs : 1)).toBe(0);
      }
      expect(await c.backend.listSchedules(`${c.project}-other`)).toEqual([]);
    });

    it("lists only the schedules coming due, soonest first, and keeps a schedule an unchanged registration repeats", async () => {
      const c = context();
      const input = c.version("etl", {
        manifestHash: manifestHash(1),
        schedules: [every("daily", 86_400), every("often", 60)],
      });
      await c.backend.registerFlowVersion(input);
      const [often] = await mine(c, Date.now() + 61_000);
      expect(often?.spec.name).toBe("often");
      expect((await mine(c, Date.now() + 2 * 86_400_000)).map((s) => s.spec.name)).toEqual(["often", "daily"]);
      expect(await c.backend.registerFlowVersion(input)).toMatchObject({ status: "unchanged" });
      expect((await c.backend.listSchedules(c.project)).find((s) => s.spec.name === "often")).toEqual(often);
    });

    it("advances a schedule by compare-and-swap on its revision", async () => {
      const c = context();
      await c.backend.registerFlowVersion(c.version("etl", { schedules: [every("often", 60)] }));
      const [state] = await c.backend.listSchedules(c.project);
      if (state === undefined) throw new Error("no schedule state");
      const advance = { project: c.project, flow: "etl", name: "often", expectedRevision: state.revision };
      const later = state.nextTickMs + 10 * HOUR;
      const moved = { advanced: true, created: [] };
      const lost = { advanced: false, created: [] };
      expect(
        await c.backend.advanceSchedule({ ...advance, coveredUntilMs: later, nextTickMs: later + 60_000 }),
      ).toEqual(moved);
      expect(
        await c.backend.advanceSchedule({ ...advance, coveredUntilMs: later, nextTickMs: later + 60_000 }),
      ).toEqual(lost);
      expect(
        await c.backend.advanceSchedule({ ...advance, name: "missing", coveredUntilMs: 1, nextTickMs: 2 }),
      ).toEqual(lost);
      const [after] = await c.backend.listSchedules(c.project);
      expect(after).toMatchObject({ coveredUntilMs: later, nextTickMs: later + 60_000, revision: state.revision + 1 });
      expect(await mine(c)).toEqual([]);
      expect(await mine(c, later + 60_000)).toHaveLength(1);
    });

    it("creates the runs of the ticks an advance covers with it, each once, and none when it loses", async () => {
      const c = context();
      const { version } = await c.backend.registerFlowVersion(
        c.version("etl", { labels: ["gpu"], schedules: [every("often", 60)] }),
      );
      const [state] = await c.backend.listSchedules(c.project);
      if (state === undefined) throw new Error("no schedule state");
      // More ticks than one DynamoDB transaction holds, and one whose key names a run already.
      const ticks = Array.from({ length: 60 }, (_, i) => ({
        scheduledAtMs: state.nextTickMs + i * 60_000,
        idempotencyKey: `schedule:etl:often:${i}`,
      }));
      const { run: earlier } = await c.backend.createRun({
        project: c.project,
        flow: "etl",
        idempotencyKey: "schedule:etl:often:55",
      });
      const runs = { version: version.version, parameters: { n: 1 }, labels: ["nightly"], ticks };
      const coveredUntilMs = (ticks.at(-1) as { scheduledAtMs: number }).scheduledAtMs;
      const advance = {
        project: c.project,
        flow: "etl",
        name: "often",
        expectedRevision: state.revision,
        coveredUntilMs,
        nextTickMs: coveredUntilMs + 60_000,
      };

      // A flow version that is not registered: refused, and nothing written.
      await expect(
        c.backend.advanceSchedule({ ...advance, runs: { ...runs, version: version.version + 9 } }),
      ).rejects.toMatchObject({ code: "NOT_FOUND" });
      expect((await c.backend.listSchedules(c.project))[0]?.revision).toBe(state.revision);

      const result = await c.backend.advanceSchedule({ ...advance, runs });
      expect(result.advanced).toBe(true);
      expect(result.created).toHaveLength(59);
      for (const run of result.created) {
        expect(run).toMatchObject({
          state: "Scheduled",
          version: version.version,
          parameters: { n: 1 },
          labels: ["gpu", "nightly"],
        });
        expect(ticks).toContainEqual({ scheduledAtMs: run.scheduledAtMs, idempotencyKey: run.idempotencyKey });
      }
      const all = await c.backend.listRuns({ project: c.project, flow: "etl", limit: 100 });
      expect(all).toHaveLength(60);
      expect(new Set(all.map((r) => r.idempotencyKey)).size).toBe(60);
      expect(all.find((r) => r.idempotencyKey === "schedule:etl:often:55")?.id).toBe(earlier.id);
      expect((await c.backend.getRun(result.created[0]?.id as string))?.labels).toEqual(["gpu", "nightly"]);
      expect((await c.backend.listSchedules(c.project))[0]).toMatchObject({
        coveredUntilMs,
        revision: state.revision + 1,
      });

      // Another agent that read the same revision writes nothing: not its cursor, not its runs.
      const stale = await c.backend.advanceSchedule({
        ...advance,
        runs: { ...runs, ticks: [{ scheduledAtMs: coveredUntilMs + 60_000, idempotencyKey: "schedule:etl:often:60" }] },
      });
      expect(stale).toEqual({ advanced: false, created: [] });
      expect(await c.backend.listRuns({ project: c.project, flow: "etl", limit: 100 })).toHaveLength(60);
    });

    it("pauses and resumes a flow's schedules, paused across a new version", async () => {
      const c = context();
      await c.backend.registerFlowVersion(
        c.version("etl", { manifestHash: manifestHash(1), schedules: [every("a", 60), every("b", 120)] }),
      );
      expect(await c.backend.setSchedulesPaused(c.project, "etl", true)).toBe(2);
      expect(await c.backend.setSchedulesPaused(c.project, "etl", true)).toBe(0);
      expect(await mine(c)).toEqual([]);
      await c.backend.registerFlowVersion(
        c.version("etl", { manifestHash: manifestHash(2), schedules: [every("a", 60)] }),
      );
      const states = await c.backend.listSchedules(c.project);
      expect(states.map((s) => [s.spec.name, s.version, s.paused])).toEqual([["a", 2, true]]);
      expect(await c.backend.setSchedulesPaused(c.project, "etl", false)).toBe(1);
      expect((await mine(c)).map((s) => s.spec.name)).toEqual(["a"]);
    });

    it("removes the schedules of a flow whose new version has none", async () => {
      const c = context();
      await c.backend.registerFlowVersion(
        c.version("etl", { manifestHash: manifestHash(1), schedules: [every("a", 60)] }),
      );
      await c.backend.registerFlowVersion(c.version("etl", { manifestHash: manifestHash(2) }));
      expect(await c.backend.listSchedules(c.project)).toEqual([]);
      expect(await mine(c)).toEqual([]);
    });
  });
}
