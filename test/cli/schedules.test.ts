import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type TernHome, ternHome } from "../support/cli.js";

let t: TernHome;
beforeEach(async () => {
  t = await ternHome();
  expect((await t.tern(["register", "test/fixtures/scheduled.ts"])).code).toBe(0);
});
afterEach(() => t.cleanup());

interface ScheduleJson {
  flow: string;
  name: string;
  timezone: string;
  paused: boolean;
  nextTicks: { utc: string; local: string }[];
  lastRun: { id: string; state: string } | null;
}

describe("tern schedules", () => {
  it("lists the next five ticks in UTC and in the schedule's zone: nine in Berlin is 08:00 UTC in winter", async () => {
    const [morning] = (await t.json<ScheduleJson[]>(["schedules", "--json"])).filter((s) => s.flow === "morning");
    expect(morning).toMatchObject({
      name: "cron 0 9 * * * Europe/Berlin",
      description: "At 09:00 (Europe/Berlin)",
      timezone: "Europe/Berlin",
      paused: false,
    });
    expect(morning?.nextTicks).toHaveLength(5);
    for (const tick of morning?.nextTicks ?? []) {
      expect(tick.local).toMatch(/T09:00:00\+0[12]:00$/);
      expect(new Date(tick.local).toISOString()).toBe(tick.utc);
      // Central European time is UTC+1 from the last Sunday of October to the last of March.
      if (tick.local.endsWith("+01:00")) expect(tick.utc).toMatch(/T08:00:00\.000Z$/);
    }
    const text = await t.tern(["schedules"]);
    expect(text.stdout).toMatch(/default\/morning v1 +cron 0 9 \* \* \* Europe\/Berlin +At 09:00 \(Europe\/Berlin\)/);
    expect(text.stdout).toMatch(/default\/minutely v1 +every 1m +Every minute /);
  });

  it("has the agent create the runs of the ticks coming due, each once", async () => {
    // As an agent run from cron every minute: it creates runs three minutes ahead.
    const once = ["agent", "--once", "--poll-interval-ms", "60000"];
    expect((await t.tern(once)).code).toBe(0);
    expect((await t.tern(once)).code).toBe(0);
    const runs = await t.json<{ flow: string; parameters: { n?: number }; scheduledAtMs: number }[]>(["runs"]);
    const minutely = runs.filter((r) => r.flow === "minutely");
    // Up to three minutes ahead, one run per minute, none twice.
    expect(minutely.length).toBeGreaterThanOrEqual(2);
    expect(new Set(minutely.map((r) => r.scheduledAtMs)).size).toBe(minutely.length);
    expect(minutely.every((r) => r.parameters.n === 3 && r.scheduledAtMs % 60_000 === 0)).toBe(true);
    // tern runs says which runs a schedule created, and when they are due.
    const table = (await t.tern(["runs"])).stdout;
    expect(table.split("\n")[0]).toMatch(/^ID +FLOW +VERSION +STATE +CREATED +FROM +REASON/);
    expect(table).toMatch(/minutely +1 +Scheduled .* schedule "every 1m" at \d{4}-\d\d-\d\d \d\d:\d\d:00/);
    // Once a tick has come, tern schedules names its run as the schedule's last.
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(...minutely.map((r) => r.scheduledAtMs)) - Date.now() + 50),
    );
    const [listed] = (await t.json<ScheduleJson[]>(["schedules", "--json"])).filter((s) => s.flow === "minutely");
    expect(listed?.lastRun).toMatchObject({ state: expect.any(String) });
  }, 90_000);

  it("pauses and resumes a flow's schedules, and names what it does not know", async () => {
    expect(await t.json(["schedules", "pause", "minutely", "--json"])).toEqual({
      project: "default",
      flow: "minutely",
      paused: true,
      changed: 1,
    });
    expect((await t.tern(["agent", "--once"])).code).toBe(0);
    expect((await t.json<{ flow: string }[]>(["runs"])).filter((r) => r.flow === "minutely")).toEqual([]);
    const listed = await t.json<ScheduleJson[]>(["schedules", "--json"]);
    expect(listed.find((s) => s.flow === "minutely")?.paused).toBe(true);
    expect((await t.tern(["schedules", "resume", "minutely"])).stdout).toBe("minutely: 1 schedule resumed\n");
    const unknown = await t.tern(["schedules", "pause", "nightly"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('flow "nightly" in project "default" has no schedule');
  });
});
