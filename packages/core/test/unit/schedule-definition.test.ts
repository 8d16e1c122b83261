import { describe, expect, it } from "vitest";
import { Flow, isTernError } from "../../src/index.js";

/** The error `new Flow` throws for `schedule`, asserted to be a FLOW_DEFINITION error. */
function refused(schedule: unknown): string {
  try {
    new Flow("nightly", { schedule } as ConstructorParameters<typeof Flow>[1]);
  } catch (error) {
    expect(isTernError(error, "FLOW_DEFINITION")).toBe(true);
    return (error as Error).message;
  }
  throw new Error("the schedule was accepted");
}

describe("a flow's schedule, checked when the flow is defined", () => {
  it("keeps what the manifest needs, with the defaults written out", () => {
    const flow = new Flow("nightly", {
      schedule: [
        { cron: "0 3 * * *", timezone: "Europe/Berlin", labels: ["gpu"], catchUp: "all" },
        { every: "15m", name: "often" },
      ],
    });
    expect(flow.schedules).toEqual([
      {
        name: "cron 0 3 * * * Europe/Berlin",
        catchUp: "all",
        labels: ["gpu"],
        cron: "0 3 * * *",
        timezone: "Europe/Berlin",
      },
      { name: "often", catchUp: "latest", every: "15m", everyMs: 900_000, anchor: "1970-01-01T00:00:00.000Z" },
    ]);
    expect(new Flow("plain", {}).schedules).toEqual([]);
    expect(new Flow("daily", { schedule: { cron: "@daily" } }).schedules[0]).toMatchObject({ timezone: "UTC" });
  });

  it.each([
    ["a bad expression", { cron: "0 25 * * *" }, 'cron "0 25 * * *" is not a valid expression'],
    ["too few fields", { cron: "0 3 * *" }, "cron must be five fields"],
    ["a year field", { cron: "0 0 3 * * * 2027" }, "six with seconds first"],
    [
      "an unknown zone",
      { cron: "0 3 * * *", timezone: "Europe/Atlantis" },
      'timezone "Europe/Atlantis" is not an IANA time zone name',
    ],
    ["an interval under a second", { every: "0s" }, 'every "0s" must be from 1s to 366d'],
    [
      "an interval without a unit",
      { every: "15" },
      'every must be a number and a unit (s, m, h, d), such as "30s", "15m", "1h30m" or "1d", got "15"',
    ],
    ["both kinds", { cron: "0 3 * * *", every: "1h" }, "give either cron"],
    ["neither kind", { timezone: "UTC" }, "got neither"],
    ["a zone on an interval", { every: "1h", timezone: "UTC" }, "timezone goes with cron"],
    [
      "an anchor without its zone",
      { every: "1h", anchor: "2026-01-01T00:00:00" },
      "anchor must be an ISO 8601 instant with its zone",
    ],
    ["an unknown key", { cron: "0 3 * * *", tz: "UTC" }, 'unknown key "tz"'],
    ["a bad policy", { every: "1h", catchUp: "some" }, 'catchUp must be "latest", "all" or "none", got "some"'],
    [
      "a parameter that is not JSON",
      { every: "1h", parameters: { at: () => 1 } },
      'parameter "at" must be a JSON value',
    ],
    ["not an object", "0 3 * * *", "a schedule is an object such as"],
  ])("refuses %s, naming the value", (_what, schedule, message) => {
    expect(refused(schedule)).toContain(message);
  });

  it("names which schedule of a list is wrong, and refuses two of the same name", () => {
    expect(refused([{ every: "1h" }, { every: "2" }])).toMatch(
      /^new Flow\("nightly", \{ schedule \}\): schedule 2: every must be/,
    );
    expect(refused([{ every: "1h" }, { every: "1h" }])).toContain('another schedule is named "every 1h"');
  });
});
