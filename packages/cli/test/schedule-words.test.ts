import { Flow, type FlowOptions } from "@tern/core";
import { describe, expect, it } from "vitest";
import { scheduleInWords } from "../src/commands/schedule-words.js";

const words = (schedule: FlowOptions["schedule"]) => scheduleInWords(new Flow("f", { schedule }).schedules[0] as never);

describe("a schedule in words", () => {
  it.each([
    [{ cron: "0 9 * * *", timezone: "Europe/Berlin" }, "At 09:00 (Europe/Berlin)"],
    [{ cron: "0 3 * * 1-5" }, "At 03:00, Monday through Friday (UTC)"],
    [
      { cron: "0 9 * * 1#2", timezone: "America/New_York" },
      "At 09:00, on the second Monday of the month (America/New_York)",
    ],
    [{ cron: "*/30 * * * * *" }, "Every 30 seconds (UTC)"],
    [{ every: "15m" }, "Every 15 minutes"],
    [{ every: "1h" }, "Every hour"],
    [{ every: "1h30m" }, "Every 1 hour and 30 minutes"],
    [{ every: "1d", anchor: "2026-01-01T06:00:00Z" }, "Every day, counted from 2026-01-01T06:00:00.000Z"],
  ] as const)("puts %j as %j", (schedule, expected) => {
    expect(words(schedule)).toBe(expected);
  });
});
