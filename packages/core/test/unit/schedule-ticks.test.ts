import { describe, expect, it } from "vitest";
import { Flow, type FlowOptions, parameter, task } from "../../src/index.js";
import {
  dueTicks,
  MAX_CATCH_UP_RUNS,
  newestTicks,
  scheduleWindows,
  ticksAfter,
  ticksBetween,
} from "../../src/runtime.js";

/** The first schedule of a flow defined with `schedule`. */
const spec = (schedule: FlowOptions["schedule"]) => {
  const [first] = new Flow("f", { schedule }).schedules;
  if (first === undefined) throw new Error("no schedule");
  return first;
};
const at = (iso: string) => Date.parse(iso);
const iso = (ticks: readonly number[]) => ticks.map((t) => new Date(t).toISOString());

describe("cron ticks in a time zone", () => {
  it("runs 09:00 Berlin time at 08:00 UTC in winter and 07:00 UTC in summer", () => {
    const nine = spec({ cron: "0 9 * * *", timezone: "Europe/Berlin" });
    expect(iso(ticksAfter(nine, at("2026-12-03T12:00:00Z"), 2))).toEqual([
      "2026-12-04T08:00:00.000Z",
      "2026-12-05T08:00:00.000Z",
    ]);
    expect(iso(ticksAfter(nine, at("2026-07-01T00:00:00Z"), 1))).toEqual(["2026-07-01T07:00:00.000Z"]);
  });

  it.each([
    // Spring forward: 02:30 does not exist that day, so it runs once at the end of the gap.
    [
      "Europe/Berlin",
      "30 2 * * *",
      "2026-03-27T12:00:00Z",
      ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"],
    ],
    [
      "America/New_York",
      "30 2 * * *",
      "2026-03-06T12:00:00Z",
      ["2026-03-07T07:30", "2026-03-08T07:00", "2026-03-09T06:30"],
    ],
    // Fall back: the repeated hour runs once, at its first occurrence.
    [
      "Europe/Berlin",
      "30 2 * * *",
      "2026-10-23T12:00:00Z",
      ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"],
    ],
    [
      "America/New_York",
      "30 1 * * *",
      "2026-10-30T12:00:00Z",
      ["2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"],
    ],
  ])("in %s, %s across a DST change runs once a day", (timezone, cron, from, expected) => {
    const ticks = ticksAfter(spec({ cron, timezone }), at(from), 3);
    expect(iso(ticks)).toEqual(expected.map((t) => `${t}:00.000Z`));
  });

  it("keeps an interval-like cron running through the repeated hour, every 30 real minutes", () => {
    const half = spec({ cron: "*/30 * * * *", timezone: "Europe/Berlin" });
    const ticks = ticksAfter(half, at("2026-10-24T23:50:00Z"), 6);
    expect(ticks.slice(1).map((t, i) => t - (ticks[i] as number))).toEqual(Array(5).fill(1_800_000));
  });

  it("reads six fields as seconds first, and month and day names", () => {
    expect(iso(ticksAfter(spec({ cron: "15 0 12 * * MON" }), at("2026-12-02T00:00:00Z"), 1))).toEqual([
      "2026-12-07T12:00:15.000Z",
    ]);
    expect(iso(ticksAfter(spec({ cron: "0 0 1 JAN *" }), at("2026-12-02T00:00:00Z"), 1))).toEqual([
      "2027-01-01T00:00:00.000Z",
    ]);
  });
});

describe("interval ticks", () => {
  it("count from the anchor, so every agent computes the same ticks whenever it asks", () => {
    const quarter = spec({ every: "15m" });
    expect(iso(ticksAfter(quarter, at("2026-12-03T12:07:00Z"), 2))).toEqual([
      "2026-12-03T12:15:00.000Z",
      "2026-12-03T12:30:00.000Z",
    ]);
    expect(ticksAfter(quarter, at("2026-12-03T12:15:00Z"), 1)).toEqual([at("2026-12-03T12:30:00Z")]);
    const shifted = spec({ every: "1h30m", anchor: "2026-01-01T00:10:00+01:00" });
    expect(iso(ticksAfter(shifted, at("2026-01-01T00:00:00Z"), 2))).toEqual([
      "2026-01-01T00:40:00.000Z",
      "2026-01-01T02:10:00.000Z",
    ]);
  });

  it("lists the ticks of a range and the newest of them", () => {
    const minute = spec({ every: "1m" });
    expect(ticksBetween(minute, at("2026-12-03T12:00:00Z"), at("2026-12-03T12:03:00Z"), 10)).toHaveLength(3);
    expect(ticksBetween(minute, at("2026-12-03T12:00:00Z"), at("2026-12-03T13:00:00Z"), 10)).toHaveLength(10);
    expect(iso(newestTicks(minute, at("2026-12-03T12:00:00Z"), at("2026-12-03T12:03:30Z"), 2))).toEqual([
      "2026-12-03T12:02:00.000Z",
      "2026-12-03T12:03:00.000Z",
    ]);
  });
});

describe("the ticks an agent's poll creates runs for", () => {
  const now = at("2026-12-03T12:07:00Z");
  const window = { nowMs: now, aheadMs: 600_000, graceMs: 120_000 };

  it("creates the ticks ahead of time, and nothing twice once they are covered", () => {
    const quarter = spec({ every: "15m" });
    const first = dueTicks(quarter, { ...window, coveredUntilMs: now - 60_000 });
    expect(first).toEqual({
      missed: [],
      ahead: [at("2026-12-03T12:15:00Z")],
      skipped: 0,
      coveredUntilMs: now + 600_000,
    });
    const next = dueTicks(quarter, { ...window, nowMs: now + 60_000, coveredUntilMs: first.coveredUntilMs });
    expect(next.ahead).toEqual([]);
    expect(next.missed).toEqual([]);
  });

  it("treats a tick within the grace as on time, whatever the policy", () => {
    const minute = spec({ every: "1m", catchUp: "none" });
    const due = dueTicks(minute, { ...window, coveredUntilMs: now - 90_000 });
    expect(iso(due.missed)).toEqual(["2026-12-03T12:06:00.000Z", "2026-12-03T12:07:00.000Z"]);
  });

  it.each([
    ["latest", ["2026-12-03T12:00:00.000Z"], 7],
    ["none", [], 8],
    [
      "all",
      ["10:15", "10:30", "10:45", "11:00", "11:15", "11:30", "11:45", "12:00"].map((t) => `2026-12-03T${t}:00.000Z`),
      0,
    ],
  ] as const)("after two hours with no agent, catchUp %s creates %j", (catchUp, missed, skipped) => {
    const quarter = spec({ every: "15m", catchUp });
    const due = dueTicks(quarter, { ...window, coveredUntilMs: at("2026-12-03T10:00:00Z") });
    expect(iso(due.missed)).toEqual(missed);
    expect(due.skipped).toBe(skipped);
    expect(iso(due.ahead)).toEqual(["2026-12-03T12:15:00.000Z"]);
  });

  it("bounds catchUp all to the newest ticks", () => {
    const second = spec({ every: "1s", catchUp: "all" });
    const due = dueTicks(second, { ...window, aheadMs: 0, coveredUntilMs: now - 3_600_000 });
    const late = due.missed.filter((t) => t <= now - 120_000);
    expect(late).toHaveLength(MAX_CATCH_UP_RUNS);
    expect(late.at(-1)).toBe(now - 120_000);
    expect(due.skipped).toBe(3_600 - 120 - MAX_CATCH_UP_RUNS);
  });

  it("works the same for a cron schedule after a weekend off", () => {
    const daily = spec({ cron: "0 9 * * *", timezone: "Europe/Berlin" });
    const due = dueTicks(daily, { ...window, coveredUntilMs: at("2026-11-28T12:00:00Z") });
    expect(iso(due.missed)).toEqual(["2026-12-03T08:00:00.000Z"]);
    expect(due.skipped).toBe(4);
  });
});

describe("the windows of an agent's poll", () => {
  it("follow its poll interval, within bounds", () => {
    expect(scheduleWindows(2_000)).toEqual({ aheadMs: 10_000, graceMs: 5_000 });
    expect(scheduleWindows(10_000)).toEqual({ aheadMs: 50_000, graceMs: 20_000 });
    expect(scheduleWindows(60_000)).toEqual({ aheadMs: 180_000, graceMs: 120_000 });
    expect(scheduleWindows(600_000)).toEqual({ aheadMs: 180_000, graceMs: 120_000 });
  });

  it("never move the cursor back for an agent with a shorter window than the last one's", () => {
    const now = at("2026-12-03T12:00:00Z");
    const second = spec({ every: "1s" });
    const due = dueTicks(second, { nowMs: now, aheadMs: 10_000, graceMs: 5_000, coveredUntilMs: now + 180_000 });
    expect(due).toEqual({ missed: [], ahead: [], skipped: 0, coveredUntilMs: now + 180_000 });
  });
});

describe("schedules on a flow", () => {
  it("are checked against the flow's parameters", () => {
    const build = () => ({ out: task("t", (n: number) => n)(parameter("n", { schema: { type: "number" } })) });
    expect(new Flow("p", { schedule: { every: "1h", parameters: { n: 2 } } }, build).schedules).toEqual([
      {
        name: "every 1h",
        catchUp: "latest",
        parameters: { n: 2 },
        every: "1h",
        everyMs: 3_600_000,
        anchor: "1970-01-01T00:00:00.000Z",
      },
    ]);
    expect(() => new Flow("p", { schedule: { every: "1h" } }, build)).toThrow(
      'new Flow("p", { schedule }): schedule "every 1h" leaves out parameter "n", which is required',
    );
    expect(() => new Flow("p", { schedule: { every: "1h", parameters: { n: "x" } } }, build)).toThrow(/"n".*"x"/s);
    expect(() => new Flow("p", { schedule: { every: "1h", parameters: { m: 1, n: 1 } } }, build)).toThrow(
      'gives parameter "m", which the flow does not declare (it has n)',
    );
  });
});
