import {
  Flow,
  FlowCycleError,
  FlowDefinitionError,
  LocalExecutor,
  ParameterError,
  parameter,
  type Ref,
  type TaskContext,
  task,
  unmapped,
} from "@tern/core";
import { describe, expect, expectTypeOf, it } from "vitest";

const quiet = { echo: false } as const;

describe("task()", () => {
  it("returns a typed reference when called in a build function", () => {
    const numbers = task("numbers", () => [1, 2, 3]);
    const total = task("total", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
    const label = task("label", async (n: number, prefix: string) => `${prefix}${n}`);
    new Flow("typed", {}, () => {
      const xs = numbers();
      expectTypeOf(xs).toEqualTypeOf<Ref<number[]>>();
      const sum = total(xs);
      expectTypeOf(sum).toEqualTypeOf<Ref<number>>();
      expectTypeOf(label(sum, "n=")).toEqualTypeOf<Ref<string>>();
      expectTypeOf(total.map([[1], [2]])).toEqualTypeOf<Ref<number[]>>();
      return {};
    });
  });

  it("rejects a reference of the wrong type at compile time", () => {
    const numbers = task("numbers", () => [1, 2, 3]);
    const shout = task("shout", (s: string) => s.toUpperCase());
    // Never called: the assertions are the @ts-expect-error lines, checked by `pnpm typecheck`.
    const definitions = () => {
      new Flow("wrong", {}, () => {
        // @ts-expect-error number[] is not a string
        shout(numbers());
        // @ts-expect-error a plain value of the wrong type
        shout(42);
        // @ts-expect-error too many arguments
        shout("a", "b");
        // @ts-expect-error map over a list of the wrong element type
        shout.map(numbers());
      });
    };
    expect(typeof definitions).toBe("function");
  });

  it("passes the context last, after the arguments", async () => {
    const seen: unknown[] = [];
    const a = task("a", (x: number, y: string, ctx: TaskContext) => {
      seen.push(x, y, ctx.attempt, typeof ctx.signal.aborted, ctx.taskRunId, ctx.runId, ctx.parameters, ctx.mapIndex);
    });
    const flow = new Flow("ctx", {}, () => {
      a(1, "two");
    });
    await flow.run({ ...quiet, runId: "run-1" });
    expect(seen).toEqual([1, "two", 1, "boolean", "run-1/a", "run-1", {}, undefined]);
  });

  it("names repeated uses name, name-2, name-3", () => {
    const step = task("step", (n: number) => n + 1);
    const flow = new Flow("slugs", {}, () => {
      step(step(step(0)));
    });
    expect(flow.tasks.map((t) => t.slug)).toEqual(["step", "step-2", "step-3"]);
    expect(flow.edges).toEqual([
      { from: "step", to: "step-2", kind: "data" },
      { from: "step-2", to: "step-3", kind: "data" },
    ]);
  });

  it("skips a slug already taken by another task's name", () => {
    const a = task("x-2", () => 1);
    const b = task("x", () => 2);
    const flow = new Flow("taken", {}, () => {
      a();
      b();
      b();
    });
    expect(flow.tasks.map((t) => t.slug)).toEqual(["x-2", "x", "x-3"]);
  });

  it.each([
    [{ maxRetries: -1 }, /maxRetries must be an integer >= 0, got -1/],
    [{ maxRetries: 1.5 }, /maxRetries must be an integer >= 0/],
    [{ retryDelayMs: -5 }, /retryDelayMs must be a number of milliseconds >= 0, got -5/],
    [{ timeoutMs: 0 }, /timeoutMs must be a positive number of milliseconds, got 0/],
    [{ trigger: "sometimes" }, /unknown trigger "sometimes". Valid triggers: allSuccessful/],
    [{ retryBackoff: "linear" }, /retryBackoff must be "fixed" or "exponential", got "linear"/],
    [{ skipOnUpstreamSkip: "yes" }, /skipOnUpstreamSkip must be a boolean/],
    [{ retries: 3 }, /unknown option "retries". Valid options: maxRetries/],
  ])("rejects bad options %o", (options, message) => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid input.
    expect(() => task("bad", () => 1, options as any)).toThrow(message);
  });

  it("rejects an empty name and a non-function", () => {
    expect(() => task("  ", () => 1)).toThrow(/name must be a non-empty string, got " {2}"/);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid input.
    expect(() => task("x", 3 as any)).toThrow(/fn must be a function, got 3/);
  });

  it("rejects a call outside a build function, naming the task and the fix", () => {
    const lonely = task("lonely", () => 1);
    expect(() => lonely()).toThrow(FlowDefinitionError);
    expect(() => lonely()).toThrow(/Task "lonely" was called outside a flow's build function.*flow\.bind\(lonely/);
  });
});

describe("definition errors", () => {
  it("rejects a reference from another flow with both flows' names", () => {
    const a = task("a", () => 1);
    const b = task("b", (n: number) => n);
    let leaked: Ref<number> | undefined;
    new Flow("first", {}, () => {
      leaked = a();
    });
    expect(
      () =>
        new Flow("second", {}, () => {
          b(leaked as Ref<number>);
        }),
    ).toThrow(/Flow "second": argument 1 of b\(...\) refers to task "a" of flow "first"/);
  });

  it("rejects two parameters with one name", () => {
    const echo = task("echo", (a: string, b: string) => a + b);
    expect(
      () =>
        new Flow("dup", {}, () => {
          echo(parameter<string>("who"), parameter<string>("who"));
        }),
    ).toThrow(/Flow "dup": parameter "who" is declared twice/);
  });

  it("rejects a cycle made with setUpstream, giving its path", () => {
    const a = task("a", () => 1);
    const b = task("b", (n: number) => n);
    const c = task("c", (n: number) => n);
    let refs: { ra: Ref<number>; rc: Ref<number> } | undefined;
    const flow = new Flow("cyclic", {}, () => {
      const ra = a();
      const rc = c(b(ra));
      refs = { ra, rc };
    });
    const { ra, rc } = refs as { ra: Ref<number>; rc: Ref<number> };
    let error: unknown;
    try {
      flow.setUpstream(ra, rc);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FlowCycleError);
    expect((error as FlowCycleError).path).toEqual(["c", "a", "b", "c"]);
    expect((error as Error).message).toContain("c -> a -> b -> c");
    expect(flow.edges).toHaveLength(2);
  });

  it("rejects a task depending on itself", () => {
    const a = task("a", () => 1);
    const flow = new Flow("self");
    expect(() => flow.setUpstream(a, a)).toThrow(/cycle: a -> a/);
  });

  // Tasks "a" and "b" of the two cases below.
  const a = task("a", () => 1);
  const b = task("b", (x: unknown) => x);
  it.each([
    {
      what: "a task passed where its result is meant",
      build: () => b(a),
      error: /argument 1 of b\(...\) is the task "a" itself. Pass its result instead/,
    },
    {
      what: "references nested in arrays or objects",
      build: () => b([a()]),
      error: /holds a reference inside an array or object/,
    },
  ])("rejects $what", ({ build, error }) => {
    expect(
      () =>
        new Flow("f", {}, () => {
          build();
        }),
    ).toThrow(error);
  });

  it("rejects unmapped() outside map and a map with nothing to map", () => {
    const b = task("b", (n: number) => n);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid input.
    const asAny = b as any;
    expect(() => new Flow("f", {}, () => void asAny(unmapped(1)))).toThrow(
      /unmapped\(\), which only applies to task.map/,
    );
    expect(() => new Flow("g", {}, () => void b.map(unmapped(1)))).toThrow(/has only unmapped\(\) arguments/);
    expect(() => new Flow("h", {}, () => void asAny.map(5))).toThrow(/must be a list to map over, got 5/);
  });

  it("rejects bad flow arguments and outputs", () => {
    expect(() => new Flow("")).toThrow(/name must be a non-empty string/);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid input.
    expect(() => new Flow("f", { exector: new LocalExecutor() } as any)).toThrow(/unknown option "exector"/);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid input.
    expect(() => new Flow("f", {}, () => ({ x: 1 }) as any)).toThrow(/output "x" is 1, not a reference/);
  });
});

describe("parameters", () => {
  const greet = task("greet", (who: string, punctuation: string) => `hello ${who}${punctuation}`);
  const make = () =>
    new Flow("greet", {}, () => {
      const who = parameter<string>("who");
      const punctuation = parameter("punctuation", { default: "!" });
      expectTypeOf(punctuation).toEqualTypeOf<Ref<string>>();
      const optional = parameter<number>("optional", { required: false });
      expectTypeOf(optional).toEqualTypeOf<Ref<number | undefined>>();
      return { greeting: greet(who, punctuation) };
    });

  it("applies defaults and passes values", async () => {
    const run = await make().run({ ...quiet, parameters: { who: "tern" } });
    expect(run.outputs.greeting).toBe("hello tern!");
    expect(run.parameters).toEqual({ who: "tern", punctuation: "!", optional: undefined });
  });

  it("rejects unknown and missing parameters before anything runs", async () => {
    let calls = 0;
    const counted = task("counted", () => {
      calls += 1;
    });
    const flow = new Flow("p", {}, () => {
      counted();
      parameter<string>("who");
    });
    await expect(flow.run({ ...quiet, parameters: { whom: "x" } })).rejects.toThrow(ParameterError);
    await expect(flow.run({ ...quiet, parameters: { whom: "x" } })).rejects.toThrow(
      /Flow "p": unknown parameter "whom"; missing required parameter "who". It declares "who". Nothing was run./,
    );
    expect(calls).toBe(0);
  });

  it("declares a parameter made outside the build function in the flow that uses it", async () => {
    const who = parameter<string>("who");
    const flow = new Flow("outside", {}, () => ({ greeting: greet(who, "?") }));
    expect(flow.parameters.map((p) => p.name)).toEqual(["who"]);
    expect((await flow.run({ ...quiet, parameters: { who: "you" } })).outputs.greeting).toBe("hello you?");
  });

  it("rejects bad parameter declarations", () => {
    expect(() => parameter("")).toThrow(/name must be a non-empty string/);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid input.
    expect(() => parameter("x", { defualt: 1 } as any)).toThrow(/unknown option "defualt"/);
  });
});

describe("the imperative form", () => {
  it("wires get_value -> output_value with setUpstream and bind", async () => {
    const printed: unknown[] = [];
    const getValue = task("get_value", () => 42);
    const outputValue = task("output_value", (v: number) => {
      printed.push(v);
    });
    const flow = new Flow("My imperative flow!");
    flow.setUpstream(outputValue, getValue);
    flow.bind(outputValue, getValue);
    expect(flow.edges).toEqual([{ from: "get_value", to: "output_value", kind: "data" }]);
    const run = await flow.run(quiet);
    expect(run.state).toBe("Success");
    expect(printed).toEqual([42]);
  });

  it("keeps state-only edges: the downstream waits but gets no value", async () => {
    const order: string[] = [];
    const first = task("first", async () => {
      await new Promise((r) => setTimeout(r, 5));
      order.push("first");
    });
    const second = task("second", () => void order.push("second"));
    const flow = new Flow("ordered");
    flow.addTask(second);
    flow.setUpstream(second, first);
    expect(flow.edges).toEqual([{ from: "first", to: "second", kind: "state" }]);
    await flow.run(quiet);
    expect(order).toEqual(["first", "second"]);
  });

  it("rejects binding a task twice and an ambiguous task", () => {
    const a = task("a", () => 1);
    const b = task("b", (n: number) => n);
    const flow = new Flow("f");
    flow.bind(b, a);
    expect(() => flow.bind(b, a)).toThrow(/task "b" already has its arguments/);
    const g = new Flow("g", {}, () => {
      a();
      a();
    });
    expect(() => g.setUpstream(b, a)).toThrow(/task "a" is used 2 times \(a, a-2\)/);
  });

  it("uses the terminal tasks as reference tasks unless told otherwise", async () => {
    const ok = task("ok", () => 1);
    const boom = task("boom", () => {
      throw new Error("boom");
    });
    const flow = new Flow("refs", {}, () => {
      ok();
      boom();
    });
    expect(flow.referenceTasks).toEqual(["ok", "boom"]);
    expect((await flow.run(quiet)).state).toBe("Failed");
    flow.setReferenceTasks(ok);
    expect((await flow.run(quiet)).state).toBe("Success");
  });
});
