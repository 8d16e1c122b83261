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
      expect(await c.backend.advanceSchedule({ ...advance, coveredUntilMs: later, nextTickMs: later + 60_000 })).toBe(
        true,
      );
      expect(await c.backend.advanceSchedule({ ...advance, coveredUntilMs: later, nextTickMs: later + 60_000 })).toBe(
        false,
      );
      expect(await c.backend.advanceSchedule({ ...advance, name: "missing", coveredUntilMs: 1, nextTickMs: 2 })).toBe(
        false,
      );
      const [after] = await c.backend.listSchedules(c.project);
      expect(after).toMatchObject({ coveredUntilMs: later, nextTickMs: later + 60_000, revision: state.revision + 1 });
      expect(await mine(c)).toEqual([]);
      expect(await mine(c, later + 60_000)).toHaveLength(1);
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
