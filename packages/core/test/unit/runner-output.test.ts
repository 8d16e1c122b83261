import { Flow, type LogRecord, task } from "@tern/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { withRunnerOutput } from "../../src/runner/logger.js";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("withRunnerOutput", () => {
  it("records console output of its async context as runner records, still printed, and leaves tasks' output theirs", async () => {
    const printed = vi.spyOn(console, "log").mockImplementation(() => {});
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const records: LogRecord[] = [];
    const tasks: string[] = [];
    const flow = new Flow("inner", {}, () => ({ out: task("t", () => console.log("from the task"))() }));
    await withRunnerOutput(
      (record) => records.push(record),
      async () => {
        console.log("before", { n: 1 });
        await new Promise((resolve) => setTimeout(resolve, 1));
        console.warn("after a timer");
        await flow.run({ echo: false, onLog: (_taskRun, record) => tasks.push(record.message) });
      },
    );
    console.log("outside");
    expect(records.map((r) => [r.source, r.level, r.message])).toEqual([
      ["runner", "info", "before { n: 1 }"],
      ["runner", "warn", "after a timer"],
    ]);
    expect(tasks).toEqual(["from the task"]);
    expect(printed.mock.calls).toEqual([["before", { n: 1 }], ["outside"]]);
  });
});
