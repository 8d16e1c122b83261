import { ConcurrentExecutor, Flow, type LogRecord, type TaskContext, task } from "@tern/core";
import { afterEach, describe, expect, it, vi } from "vitest";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(() => {
  vi.restoreAllMocks();
});

describe("task logs", () => {
  it("keeps logger records and console output with the task run that made them", async () => {
    const a = task("a", async (ctx: TaskContext) => {
      ctx.logger.info("starting", { rows: 3 });
      await sleep(5);
      console.log("a says", { n: 1 });
      console.error("a complains");
    });
    const b = task("b", async (ctx: TaskContext) => {
      console.log("b says hi");
      await sleep(1);
      ctx.logger.warn("b warns");
      console.debug("b debug");
    });
    const flow = new Flow("logs", {}, () => {
      a();
      b();
    });
    const result = await flow.run({ echo: false, executor: new ConcurrentExecutor({ maxConcurrency: 2 }) });
    const lines = (slug: string) =>
      (result.taskRuns.find((t) => t.slug === slug)?.logs ?? []).map((r) => [r.source, r.level, r.message, r.fields]);
    expect(lines("a")).toEqual([
      ["logger", "info", "starting", { rows: 3 }],
      ["console", "info", "a says { n: 1 }", undefined],
      ["console", "error", "a complains", undefined],
    ]);
    expect(lines("b")).toEqual([
      ["console", "info", "b says hi", undefined],
      ["logger", "warn", "b warns", undefined],
      ["console", "debug", "b debug", undefined],
    ]);
  });

  it("passes console output through and writes logger lines to stderr when echo is on", async () => {
    const original = console.log;
    const printed: unknown[][] = [];
    console.log = (...args: unknown[]) => void printed.push(args);
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      const a = task("a", (ctx: TaskContext) => {
        console.log("Here's your data:", 10);
        ctx.logger.info("done");
      });
      await new Flow("echo", {}, () => void a()).run({ echo: true });
    } finally {
      console.log = original;
    }
    expect(printed).toEqual([["Here's your data:", 10]]);
    expect(stderr.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringMatching(/INFO {2}\[a\] done\n$/)]);
  });

  it("keeps console output out of the terminal when echo is off, and restores console after the run", async () => {
    const spy = vi.fn();
    const original = console.log;
    console.log = spy;
    try {
      const a = task("a", () => console.log("captured only"));
      const result = await new Flow("quiet", {}, () => void a()).run({ echo: false });
      expect(result.taskRuns[0]?.logs.map((r) => r.message)).toEqual(["captured only"]);
      expect(spy).not.toHaveBeenCalled();
      console.log("outside any task");
      expect(spy).toHaveBeenCalledWith("outside any task");
      expect(console.log).toBe(spy);
    } finally {
      console.log = original;
    }
  });

  it("streams every record to onLog as it is written", async () => {
    const seen: Array<[string, LogRecord["message"]]> = [];
    const a = task("a", (n: number, ctx: TaskContext) => ctx.logger.info(`item ${n}`));
    const flow = new Flow("stream", {}, () => void a.map([1, 2]));
    await flow.run({ echo: false, onLog: (t, r) => seen.push([t.id.split("/")[1] as string, r.message]) });
    expect(seen).toEqual([
      ["a[0]", "item 1"],
      ["a[1]", "item 2"],
    ]);
  });
});
