/** A retried task run keeps the errors of its earlier attempts, bounded, through serialization. */
import { Flow, type TaskContext, type TaskRun, task } from "@tern/core";
import { serializeRun } from "@tern/core/plugin";
import { describe, expect, it } from "vitest";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a flow of the one task `use` and resolves its task run. */
async function onlyTaskRun(use: () => unknown): Promise<TaskRun> {
  const result = await new Flow("f", {}, () => void use()).run({ echo: false });
  expect(result.taskRuns).toHaveLength(1);
  return result.taskRuns[0] as TaskRun;
}

describe("attempt errors", () => {
  it("keeps each retried attempt's error when a task succeeds at a later attempt", async () => {
    const flaky = task(
      "flaky",
      (ctx: TaskContext) => {
        if (ctx.attempt === 1) throw new TypeError("bad input on attempt 1");
        if (ctx.attempt === 2) throw new Error("refused on attempt 2");
        return "ok";
      },
      { maxRetries: 2, retryDelayMs: 0 },
    );
    const run = await onlyTaskRun(() => flaky());
    expect(run).toMatchObject({ state: "Success", attempts: 3 });
    expect(run.attemptErrors).toEqual([
      { attempt: 1, name: "TypeError", message: "bad input on attempt 1", timedOut: false },
      { attempt: 2, name: "Error", message: "refused on attempt 2", timedOut: false },
    ]);
  });

  it("says which attempt timed out, and leaves the last attempt's error to `error`", async () => {
    const slow = task(
      "slow",
      async (ctx: TaskContext) => {
        if (ctx.attempt === 1) await sleep(200);
        throw new Error("gave up on attempt 2");
      },
      { timeoutMs: 30, maxRetries: 1, retryDelayMs: 0 },
    );
    const run = await onlyTaskRun(() => slow());
    expect(run).toMatchObject({ state: "Failed", attempts: 2, error: { message: "gave up on attempt 2" } });
    expect(run.attemptErrors).toEqual([
      {
        attempt: 1,
        name: "TaskTimeoutError",
        message: expect.stringContaining("timed out after 30 ms"),
        timedOut: true,
      },
    ]);
  });

  it("keeps the 10 most recent attempts, with messages cut to 1000 characters", async () => {
    const long = "x".repeat(5000);
    const always = task(
      "always",
      (ctx: TaskContext) => {
        throw new Error(`${ctx.attempt} ${long}`);
      },
      { maxRetries: 14, retryDelayMs: 0 },
    );
    const run = await onlyTaskRun(() => always());
    expect(run.attempts).toBe(15);
    // Attempts 1-14 were retried; 5-14 are kept; 15 is `error`.
    expect(run.attemptErrors?.map((e) => e.attempt)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    for (const e of run.attemptErrors ?? []) {
      expect(e.message).toMatch(/^\d+ x+… \(\d+ more characters\)$/);
      expect(e.message.length).toBeLessThan(1100);
    }
  });

  it("has none for a task run of one attempt, and serializes them when there are some", async () => {
    const once = task("once", () => 1);
    const twice = task(
      "twice",
      (ctx: TaskContext) => {
        if (ctx.attempt === 1) throw new Error("first");
        return 2;
      },
      { maxRetries: 1, retryDelayMs: 0 },
    );
    const result = await new Flow("f", {}, () => ({ a: once(), b: twice() })).run({ echo: false });
    const [onceRun, twiceRun] = JSON.parse(JSON.stringify(serializeRun(result))).taskRuns;
    expect(onceRun).not.toHaveProperty("attemptErrors");
    expect(twiceRun.attemptErrors).toEqual([{ attempt: 1, name: "Error", message: "first", timedOut: false }]);
  });
});
