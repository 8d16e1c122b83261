import {
  ConcurrentExecutor,
  type Executor,
  Flow,
  LocalExecutor,
  skip,
  type TaskContext,
  type TaskRun,
  type TriggerName,
  task,
  unmapped,
} from "@tern/core";
import { afterEach, describe, expect, it, vi } from "vitest";

const executors: Array<[string, () => Executor]> = [
  ["LocalExecutor", () => new LocalExecutor()],
  ["ConcurrentExecutor", () => new ConcurrentExecutor({ maxConcurrency: 4 })],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const byId = (runs: readonly TaskRun[], slug: string, mapIndex?: number) =>
  runs.find((t) => t.slug === slug && t.mapIndex === mapIndex) as TaskRun;

afterEach(() => {
  vi.useRealTimers();
});

describe.each(executors)("%s", (_name, makeExecutor) => {
  const run = <F extends Flow>(flow: F, options: Parameters<F["run"]>[0] = {}) =>
    flow.run({ echo: false, executor: makeExecutor(), ...options });

  describe("states", () => {
    it("runs the ETL chain to Success with results and outputs", async () => {
      const extract = task("extract", () => [1, 2, 3]);
      const transform = task("transform", async (xs: number[]) => xs.map((x) => x * 10));
      const load = task("load", (xs: number[]) => xs.join(","));
      const flow = new Flow("etl", {}, () => ({ loaded: load(transform(extract())) }));
      const result = await run(flow);
      expect(result.state).toBe("Success");
      expect(result.message).toBeUndefined();
      expect(result.outputs).toEqual({ loaded: "10,20,30" });
      expect(result.taskRuns.map((t) => [t.slug, t.state, t.attempts, t.result])).toEqual([
        ["extract", "Success", 1, [1, 2, 3]],
        ["transform", "Success", 1, [10, 20, 30]],
        ["load", "Success", 1, "10,20,30"],
      ]);
    });

    it("fails the flow naming the failed tasks, keeping the error's message and stack", async () => {
      const ok = task("ok", () => 1);
      const bad = task("bad", (_n: number) => {
        throw new TypeError("no such column: price");
      });
      const after = task("after", (n: number) => n);
      const flow = new Flow("failing", {}, () => ({ out: after(bad(ok())) }));
      const result = await run(flow);
      expect(result.state).toBe("Failed");
      expect(result.outputs.out).toBeUndefined();
      const failed = byId(result.taskRuns, "bad");
      expect(failed.state).toBe("Failed");
      expect(failed.error?.name).toBe("TypeError");
      expect(failed.error?.message).toBe("no such column: price");
      expect(failed.error?.stack).toContain("runner.test.ts");
      expect(byId(result.taskRuns, "after").state).toBe("TriggerFailed");
      expect(result.message).toBe(
        '2 task runs did not succeed: bad (Failed: no such column: price); after (TriggerFailed: trigger allSuccessful not met: upstream "bad" is Failed)',
      );
    });

    it("reports a thrown non-Error value", async () => {
      const bad = task("bad", () => {
        throw "plain string";
      });
      const result = await run(new Flow("f", {}, () => void bad()));
      expect(byId(result.taskRuns, "bad").error).toEqual({
        name: "NonError",
        message: "a non-Error value was thrown: plain string",
      });
    });

    it("skips a task that calls skip(), and its downstream unless told otherwise", async () => {
      const maybe = task("maybe", () => skip("nothing new today"));
      const next = task("next", (_x: unknown) => 1);
      const always = task("always", (_x: unknown) => 2, { skipOnUpstreamSkip: false });
      const flow = new Flow("skips", {}, () => {
        const m = maybe();
        next(m);
        always(m);
      });
      const result = await run(flow);
      expect(byId(result.taskRuns, "maybe")).toMatchObject({ state: "Skipped", message: "nothing new today" });
      expect(byId(result.taskRuns, "maybe").error).toBeUndefined();
      expect(byId(result.taskRuns, "next")).toMatchObject({
        state: "Skipped",
        message: 'upstream "maybe" was skipped',
      });
      expect(byId(result.taskRuns, "always")).toMatchObject({ state: "Success", result: 2 });
      expect(result.state).toBe("Success");
    });

    it("reports each state change to onTaskRunState", async () => {
      const flaky = task(
        "flaky",
        (ctx: TaskContext) => {
          if (ctx.attempt === 1) throw new Error("first try fails");
          return "ok";
        },
        { maxRetries: 1 },
      );
      const seen: string[] = [];
      await run(new Flow("f", {}, () => void flaky()), {
        onTaskRunState: (t) => seen.push(`${t.slug}:${t.state}:${t.attempts}`),
      });
      expect(seen).toEqual(["flaky:Running:1", "flaky:Retrying:1", "flaky:Running:2", "flaky:Success:2"]);
    });
  });

  describe("retries", () => {
    it("retries a failing task up to maxRetries and then fails it", async () => {
      let calls = 0;
      const always = task(
        "always",
        () => {
          calls += 1;
          throw new Error(`failure ${calls}`);
        },
        { maxRetries: 2 },
      );
      const result = await run(new Flow("f", {}, () => void always()));
      expect(calls).toBe(3);
      expect(byId(result.taskRuns, "always")).toMatchObject({
        state: "Failed",
        attempts: 3,
        message: "failure 3 (after 3 attempts)",
      });
    });

    it("succeeds on a retry and passes the attempt number", async () => {
      const attempts: number[] = [];
      const flaky = task(
        "flaky",
        async (ctx: TaskContext) => {
          attempts.push(ctx.attempt);
          if (ctx.attempt < 3) throw new Error("not yet");
          return "done";
        },
        { maxRetries: 5 },
      );
      const result = await run(new Flow("f", {}, () => ({ out: flaky() })));
      expect(attempts).toEqual([1, 2, 3]);
      expect(result.outputs.out).toBe("done");
      expect(byId(result.taskRuns, "flaky")).toMatchObject({ state: "Success", attempts: 3 });
    });

    /** Fake timers, and a task "flaky" that throws on its first `failures` calls (counted in `counter.calls`). */
    function flakyOnFakeTimers(failures: number, options: Parameters<typeof task>[2]) {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
      const counter = { calls: 0 };
      const flaky = task(
        "flaky",
        () => {
          counter.calls += 1;
          if (counter.calls <= failures) throw new Error("down");
        },
        options,
      );
      return { flaky, counter };
    }

    it("waits retryDelayMs between attempts, doubling with exponential backoff up to maxRetryDelayMs", async () => {
      const { flaky, counter } = flakyOnFakeTimers(Number.POSITIVE_INFINITY, {
        maxRetries: 3,
        retryDelayMs: 10,
        retryBackoff: "exponential",
        maxRetryDelayMs: 25,
      });
      const pending = run(new Flow("f", {}, () => void flaky()));
      expect(counter.calls).toBe(1);
      for (const [wait, expected] of [
        [9, 1],
        [1, 2],
        [19, 2],
        [1, 3],
        [24, 3],
        [1, 4],
      ] as const) {
        await vi.advanceTimersByTimeAsync(wait);
        expect(counter.calls).toBe(expected);
      }
      expect((await pending).state).toBe("Failed");
    });

    it("waits a fixed delay by default", async () => {
      const { flaky, counter } = flakyOnFakeTimers(2, { maxRetries: 3, retryDelayMs: 10 });
      const pending = run(new Flow("f", {}, () => void flaky()));
      await vi.advanceTimersByTimeAsync(9);
      expect(counter.calls).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(counter.calls).toBe(2);
      await vi.advanceTimersByTimeAsync(9);
      expect(counter.calls).toBe(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(counter.calls).toBe(3);
      expect((await pending).state).toBe("Success");
    });
  });

  describe("timeouts", () => {
    it("aborts the task's signal and marks it TimedOut", async () => {
      let abortedWith: unknown;
      const slow = task(
        "slow",
        (ctx: TaskContext) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener("abort", () => {
              abortedWith = ctx.signal.reason;
              resolve("late");
            });
          }),
        { timeoutMs: 20 },
      );
      const after = task("after", (_x: unknown) => 1);
      const result = await run(new Flow("f", {}, () => void after(slow())));
      const slowRun = byId(result.taskRuns, "slow");
      expect(slowRun.state).toBe("TimedOut");
      expect(slowRun.message).toBe('Task "slow" timed out after 20 ms (its timeoutMs).');
      expect(slowRun.result).toBeUndefined();
      expect((abortedWith as Error).name).toBe("TaskTimeoutError");
      expect(byId(result.taskRuns, "after").state).toBe("TriggerFailed");
      expect(result.state).toBe("Failed");
    });

    it("retries a timed-out attempt with a fresh timeout", async () => {
      const slowOnce = task(
        "slowOnce",
        async (ctx: TaskContext) => {
          if (ctx.attempt === 1) await sleep(200);
          return ctx.attempt;
        },
        { timeoutMs: 30, maxRetries: 1 },
      );
      const result = await run(new Flow("f", {}, () => ({ out: slowOnce() })));
      expect(result.outputs.out).toBe(2);
      expect(byId(result.taskRuns, "slowOnce")).toMatchObject({ state: "Success", attempts: 2 });
    });

    it("does not time out a task that finishes in time", async () => {
      const quick = task("quick", async () => "ok", { timeoutMs: 1_000 });
      const result = await run(new Flow("f", {}, () => ({ out: quick() })));
      expect(result.outputs.out).toBe("ok");
    });
  });

  describe("triggers", () => {
    const cases: Array<[TriggerName, "ok" | "fail" | "both", "ran" | "TriggerFailed"]> = [
      ["allSuccessful", "ok", "ran"],
      ["allSuccessful", "both", "TriggerFailed"],
      ["allFinished", "both", "ran"],
      ["allFinished", "fail", "ran"],
      ["anySuccessful", "both", "ran"],
      ["anySuccessful", "fail", "TriggerFailed"],
      ["anyFailed", "both", "ran"],
      ["anyFailed", "ok", "TriggerFailed"],
      ["allFailed", "fail", "ran"],
      ["allFailed", "both", "TriggerFailed"],
    ];
    it.each(cases)("%s with upstream %s: %s", async (trigger, upstream, expected) => {
      const ok = task("ok", () => 1);
      const fail = task("fail", () => {
        throw new Error("x");
      });
      let ran = false;
      const gated = task(
        "gated",
        () => {
          ran = true;
        },
        { trigger },
      );
      const built = new Flow("triggers");
      const g = built.addTask(gated);
      if (upstream !== "fail") built.setUpstream(g, ok);
      if (upstream !== "ok") built.setUpstream(g, fail);
      const result = await run(built);
      expect(byId(result.taskRuns, "gated").state).toBe(expected === "ran" ? "Success" : "TriggerFailed");
      expect(ran).toBe(expected === "ran");
    });

    it("runs an allFinished cleanup task after a failure, and the flow still fails", async () => {
      const bad = task("bad", () => {
        throw new Error("x");
      });
      const cleanup = task("cleanup", () => "cleaned", { trigger: "allFinished" });
      const flow = new Flow("cleanup");
      flow.setUpstream(cleanup, bad);
      flow.setReferenceTasks(bad, cleanup);
      const result = await run(flow);
      expect(byId(result.taskRuns, "cleanup").state).toBe("Success");
      expect(result.state).toBe("Failed");
    });
  });

  describe("map", () => {
    it("fans out over a list, one child per element, with unmapped arguments shared", async () => {
      const numbers = task("numbers", () => [1, 2, 3]);
      const scale = task("scale", (n: number, factor: number, ctx: TaskContext) => `${ctx.mapIndex}:${n * factor}`);
      const flow = new Flow("map", {}, () => ({ scaled: scale.map(numbers(), unmapped(10)) }));
      const result = await run(flow);
      expect(result.outputs.scaled).toEqual(["0:10", "1:20", "2:30"]);
      const children = result.taskRuns.filter((t) => t.slug === "scale" && t.mapIndex !== undefined);
      expect(children.map((c) => [c.mapIndex, c.state, c.id])).toEqual([
        [0, "Success", `${result.runId}/scale[0]`],
        [1, "Success", `${result.runId}/scale[1]`],
        [2, "Success", `${result.runId}/scale[2]`],
      ]);
      expect(byId(result.taskRuns, "scale")).toMatchObject({ state: "Success", attempts: 0 });
    });

    it("maps over two lists in step and feeds the list to a reducer", async () => {
      const add = task("add", (a: number, b: number) => a + b);
      const total = task("total", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
      const flow = new Flow("zip", {}, () => ({ total: total(add.map([1, 2], [10, 20])) }));
      expect((await run(flow)).outputs.total).toBe(33);
    });

    it("maps over an empty list: no children, an empty result, downstream runs", async () => {
      const empty = task("empty", (): number[] => []);
      const double = task("double", (n: number) => n * 2);
      const count = task("count", (xs: number[]) => xs.length);
      const flow = new Flow("empty", {}, () => ({ count: count(double.map(empty())) }));
      const result = await run(flow);
      expect(result.state).toBe("Success");
      expect(result.outputs.count).toBe(0);
      expect(result.taskRuns.filter((t) => t.slug === "double")).toHaveLength(1);
    });

    it("retries each child on its own and fails the parent when a child fails", async () => {
      const calls = new Map<number, number>();
      const risky = task(
        "risky",
        (n: number) => {
          calls.set(n, (calls.get(n) ?? 0) + 1);
          if (n === 2) throw new Error("two is bad");
          return n;
        },
        { maxRetries: 1 },
      );
      const result = await run(new Flow("f", {}, () => ({ out: risky.map([1, 2, 3]) })));
      expect([...calls.entries()].sort()).toEqual([
        [1, 1],
        [2, 2],
        [3, 1],
      ]);
      expect(byId(result.taskRuns, "risky", 1)).toMatchObject({ state: "Failed", attempts: 2 });
      expect(byId(result.taskRuns, "risky").state).toBe("Failed");
      expect(byId(result.taskRuns, "risky").message).toContain("1 of 3 mapped task runs did not succeed");
      expect(result.message).toContain("risky[1] (Failed: two is bad (after 2 attempts))");
    });

    it("fails the mapped task when a reference is not a list or the lengths differ", async () => {
      const notList = task("notList", () => 5 as unknown as number[]);
      const pair = task("pair", (a: number, b: number) => a + b);
      const flow = new Flow("f", {}, () => {
        pair.map(notList(), [1]);
        pair.map([1, 2], [1, 2, 3]);
      });
      const result = await run(flow);
      expect(byId(result.taskRuns, "pair").message).toBe("argument 1 of pair.map(...) must be a list, got number");
      expect(byId(result.taskRuns, "pair-2").message).toContain("differ in length (2, 3)");
    });
  });

  describe("cancellation", () => {
    it("aborts running tasks, cancels pending ones, and resolves promptly", async () => {
      const controller = new AbortController();
      let sawAbort = false;
      let markStarted!: () => void;
      const started = new Promise<void>((resolve) => {
        markStarted = resolve;
      });
      const stubborn = task("stubborn", async (ctx: TaskContext) => {
        ctx.signal.addEventListener("abort", () => {
          sawAbort = true;
        });
        markStarted();
        await sleep(10_000); // ignores the signal on purpose
      });
      const later = task("later", (_x: unknown) => 1);
      const flow = new Flow("cancel", {}, () => void later(stubborn()));
      const pending = run(flow, { signal: controller.signal });
      await started;
      const t0 = performance.now();
      controller.abort();
      const result = await pending;
      expect(performance.now() - t0).toBeLessThan(1_000);
      expect(result.state).toBe("Cancelled");
      expect(sawAbort).toBe(true);
      expect(result.taskRuns.map((t) => [t.slug, t.state])).toEqual([
        ["stubborn", "Cancelled"],
        ["later", "Cancelled"],
      ]);
      expect(byId(result.taskRuns, "later").message).toBe("the flow run was cancelled");
    });

    it("cancels a task waiting to retry", async () => {
      const controller = new AbortController();
      const failing = task(
        "failing",
        () => {
          setTimeout(() => controller.abort(new Error("operator stop")), 5);
          throw new Error("down");
        },
        { maxRetries: 3, retryDelayMs: 60_000 },
      );
      const result = await run(new Flow("f", {}, () => void failing()), { signal: controller.signal });
      expect(result.state).toBe("Cancelled");
      expect(result.message).toBe("Cancelled: operator stop");
      expect(byId(result.taskRuns, "failing")).toMatchObject({ state: "Cancelled", attempts: 1 });
    });

    it("runs nothing when the signal is already aborted", async () => {
      let ran = false;
      const a = task("a", () => {
        ran = true;
      });
      const result = await run(new Flow("f", {}, () => void a()), { signal: AbortSignal.abort() });
      expect(result.state).toBe("Cancelled");
      expect(ran).toBe(false);
    });
  });
});

describe("executors", () => {
  /** A task "work" that sleeps `ms`, and the most of its runs that were in flight at once. */
  function concurrencyProbe(ms: number) {
    let inFlight = 0;
    const probe = {
      most: 0,
      work: task("work", async (_i: number) => {
        inFlight += 1;
        probe.most = Math.max(probe.most, inFlight);
        await sleep(ms);
        inFlight -= 1;
      }),
    };
    return probe;
  }

  it("LocalExecutor runs one task at a time in definition order", async () => {
    const order: string[] = [];
    let inFlight = 0;
    let most = 0;
    const step = task("step", async (name: string) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      order.push(`start ${name}`);
      await sleep(1);
      order.push(`end ${name}`);
      inFlight -= 1;
      return name;
    });
    const flow = new Flow("seq", {}, () => {
      step("a");
      step("b");
      step("c");
    });
    const result = await flow.run({ echo: false, executor: new LocalExecutor() });
    expect(result.state).toBe("Success");
    expect(most).toBe(1);
    expect(order).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });

  it("ConcurrentExecutor overlaps independent branches and holds its limit", async () => {
    const probe = concurrencyProbe(5);
    const flow = new Flow("wide", {}, () => {
      for (let i = 0; i < 20; i++) probe.work(i);
    });
    await flow.run({ echo: false, executor: new ConcurrentExecutor({ maxConcurrency: 3 }) });
    expect(probe.most).toBe(3);
    probe.most = 0;
    await flow.run({ echo: false, executor: new ConcurrentExecutor({ maxConcurrency: 50 }) });
    expect(probe.most).toBe(20);
  });

  it("uses the flow's executor unless the run overrides it", async () => {
    const probe = concurrencyProbe(2);
    const flow = new Flow("wide", { executor: new ConcurrentExecutor({ maxConcurrency: 5 }) }, () => {
      for (let i = 0; i < 10; i++) probe.work(i);
    });
    await flow.run({ echo: false });
    expect(probe.most).toBe(5);
    probe.most = 0;
    await flow.run({ echo: false, executor: new LocalExecutor() });
    expect(probe.most).toBe(1);
  });

  it("rejects a bad maxConcurrency", () => {
    expect(() => new ConcurrentExecutor({ maxConcurrency: 0 })).toThrow(
      /maxConcurrency must be an integer >= 1, got 0/,
    );
  });

  it("runs a long synchronous chain without growing the stack", async () => {
    const inc = task("inc", (n: number) => n + 1);
    const flow = new Flow("chain", {}, () => {
      let ref = inc(0);
      for (let i = 1; i < 20_000; i++) ref = inc(ref);
      return { last: ref };
    });
    const result = await flow.run({ echo: false });
    expect(result.outputs.last).toBe(20_000);
  });
});
