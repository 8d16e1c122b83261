import { TernError } from "@tern/core";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_LOG_LIMIT_BYTES,
  formatBytes,
  LogBudget,
  logLimitBytes,
  logRecordBytes,
} from "../../src/runner/log-budget.js";
import type { LogRecord } from "../../src/runner/logger.js";

interface Captured extends LogRecord {
  readonly taskRunId: string;
}

const line = (message: string, taskRunId = "run/t", extra: Partial<LogRecord> = {}): Captured => ({
  taskRunId,
  timeMs: 1,
  level: "info",
  message,
  source: "console",
  ...extra,
});

describe("logLimitBytes", () => {
  it("is 10 MiB when TERN_LOG_LIMIT_BYTES is unset or blank", () => {
    expect(DEFAULT_LOG_LIMIT_BYTES).toBe(10_485_760);
    expect(logLimitBytes({})).toBe(DEFAULT_LOG_LIMIT_BYTES);
    expect(logLimitBytes({ TERN_LOG_LIMIT_BYTES: "  " })).toBe(DEFAULT_LOG_LIMIT_BYTES);
  });

  it("reads a whole number of bytes", () => {
    expect(logLimitBytes({ TERN_LOG_LIMIT_BYTES: "1" })).toBe(1);
    expect(logLimitBytes({ TERN_LOG_LIMIT_BYTES: " 2048 " })).toBe(2048);
    expect(logLimitBytes({ TERN_LOG_LIMIT_BYTES: "104857600" })).toBe(104_857_600);
  });

  it.each(["0", "-5", "10MB", "1.5", "1e6", "abc", "99999999999999999999"])(
    "refuses %j, naming the value and the fix",
    (value) => {
      let error: unknown;
      try {
        logLimitBytes({ TERN_LOG_LIMIT_BYTES: value });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TernError);
      expect((error as TernError).code).toBe("LOG_LIMIT");
      expect((error as TernError).message).toContain(`TERN_LOG_LIMIT_BYTES=${JSON.stringify(value)} is not a number`);
      expect((error as TernError).message).toContain("whole number of at least 1");
      expect((error as TernError).message).toContain("or unset it");
    },
  );

  it("is what a budget uses when given no limit", () => {
    const saved = process.env.TERN_LOG_LIMIT_BYTES;
    try {
      process.env.TERN_LOG_LIMIT_BYTES = "123";
      expect(new LogBudget().limitBytes).toBe(123);
      delete process.env.TERN_LOG_LIMIT_BYTES;
      expect(new LogBudget().limitBytes).toBe(DEFAULT_LOG_LIMIT_BYTES);
      process.env.TERN_LOG_LIMIT_BYTES = "lots";
      expect(() => new LogBudget()).toThrow(/TERN_LOG_LIMIT_BYTES="lots"/);
    } finally {
      if (saved === undefined) delete process.env.TERN_LOG_LIMIT_BYTES;
      else process.env.TERN_LOG_LIMIT_BYTES = saved;
    }
  });
});

describe("logRecordBytes", () => {
  it("counts the message in UTF-8 and the fields as JSON", () => {
    expect(logRecordBytes(line("abc"))).toBe(3);
    expect(logRecordBytes(line("é😀"))).toBe(2 + 4);
    expect(logRecordBytes(line("ab", "t", { fields: { n: 1 } }))).toBe(2 + '{"n":1}'.length);
  });

  it("counts fields that are not JSON for nothing instead of throwing", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(logRecordBytes(line("ab", "t", { fields: cyclic }))).toBe(2);
    expect(logRecordBytes(line("ab", "t", { fields: { big: 1n } }))).toBe(2);
  });
});

describe("LogBudget", () => {
  it("keeps records while they fit, to the byte", () => {
    const budget = new LogBudget<Captured>({ limitBytes: 10 });
    expect(budget.admit(line("12345"))).toEqual([line("12345")]);
    expect(budget.admit(line("67890"))).toEqual([line("67890")]);
    expect(budget.exceeded).toBe(false);
    expect(budget.kept).toEqual({ records: 2, bytes: 10 });
    expect(budget.dropped).toEqual({ records: 0, bytes: 0 });
    expect(budget.summary()).toBeUndefined();
  });

  it("drops the record that goes over and everything after, with one note in place of the first", () => {
    const budget = new LogBudget<Captured>({ limitBytes: 10, now: () => 42 });
    expect(budget.admit(line("12345678"))).toHaveLength(1);
    const [note, ...more] = budget.admit(line("abc", "run/second", { fields: { secret: "x" }, level: "error" }));
    expect(more).toEqual([]);
    expect(note).toEqual({
      taskRunId: "run/second",
      timeMs: 42,
      level: "warn",
      source: "logger",
      message:
        "tern: this run's log output went over 10 bytes; the rest of it was dropped " +
        "(the limit per run is TERN_LOG_LIMIT_BYTES=10; raise it to keep more, or log less).",
    });
    expect(budget.exceeded).toBe(true);
    // A small record that would fit is still dropped: the log ends at the note, without gaps.
    expect(budget.admit(line("a"))).toEqual([]);
    expect(budget.admit(line("é", "run/third", { fields: { n: 1 } }))).toEqual([]);
    expect(budget.kept).toEqual({ records: 1, bytes: 8 });
    expect(budget.dropped).toEqual({ records: 3, bytes: 3 + '{"secret":"x"}'.length + 1 + 2 + 7 });
  });

  it("drops a single record larger than the whole limit", () => {
    const budget = new LogBudget<Captured>({ limitBytes: 1024 });
    const [note] = budget.admit(line("x".repeat(2000)));
    expect(note?.message).toMatch(/went over 1 KiB; the rest of it was dropped/);
    expect(budget.kept).toEqual({ records: 0, bytes: 0 });
    expect(budget.dropped).toEqual({ records: 1, bytes: 2000 });
  });

  it("sums up what was dropped for the end of the run, on the task run of the first drop", () => {
    const budget = new LogBudget<Captured>({ limitBytes: 5 * 1024 * 1024, now: () => 7 });
    const chunk = "z".repeat(1024 * 1024);
    for (let i = 0; i < 5; i++) expect(budget.admit(line(chunk, "run/a"))).toHaveLength(1);
    expect(budget.admit(line(chunk, "run/b"))[0]?.message).toContain("went over 5 MiB");
    for (let i = 0; i < 3; i++) expect(budget.admit(line(chunk, "run/c"))).toEqual([]);
    expect(budget.summary()).toEqual({
      taskRunId: "run/b",
      timeMs: 7,
      level: "warn",
      source: "logger",
      message: "tern: 4 log records were dropped (4 MiB) over this run's 5 MiB limit (TERN_LOG_LIMIT_BYTES).",
    });
  });

  it("caps 50 MB of console output at the limit: a bounded number of records, one note", () => {
    const budget = new LogBudget<Captured>({ limitBytes: DEFAULT_LOG_LIMIT_BYTES });
    const kb = "k".repeat(1023);
    const stored: Captured[] = [];
    for (let i = 0; i < 51_200; i++) stored.push(...budget.admit(line(kb)));
    const notes = stored.filter((r) => r.message.startsWith("tern: "));
    expect(notes).toHaveLength(1);
    expect(stored.at(-1)).toBe(notes[0]);
    expect(stored.length).toBe(Math.floor(DEFAULT_LOG_LIMIT_BYTES / 1023) + 1);
    expect(budget.kept.bytes).toBeLessThanOrEqual(DEFAULT_LOG_LIMIT_BYTES);
    expect(budget.kept.records + budget.dropped.records).toBe(51_200);
  });

  it("refuses a limit that is not a whole number of at least 1, naming it", () => {
    for (const limitBytes of [0, -1, 2.5, Number.NaN]) {
      expect(() => new LogBudget({ limitBytes })).toThrow(
        new RegExp(`A log limit of ${String(limitBytes)} bytes is not one`),
      );
    }
  });
});

describe("formatBytes", () => {
  it("says bytes, KiB or MiB", () => {
    expect(formatBytes(1)).toBe("1 byte");
    expect(formatBytes(100)).toBe("100 bytes");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(10 * 1024 * 1024)).toBe("10 MiB");
    expect(formatBytes(52_428_800)).toBe("50 MiB");
  });
});
