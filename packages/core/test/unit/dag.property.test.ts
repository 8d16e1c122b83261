import { ConcurrentExecutor, type Executor, Flow, LocalExecutor, type Ref, task } from "@tern/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

/** A random DAG: node j may depend on any node i < j, by data or by state only. */
const dagArbitrary = fc.integer({ min: 1, max: 25 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    edges: fc.array(
      fc.record({ from: fc.nat(), to: fc.nat(), data: fc.boolean() }).map(({ from, to, data }) => {
        const a = from % n;
        const b = to % n;
        return { from: Math.min(a, b), to: Math.max(a, b), data };
      }),
      { maxLength: n * 3 },
    ),
    // 0: returns synchronously, 1: after a microtask, 2-3: after a timer
    delays: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n }),
  }),
);

const executors: Array<[string, () => Executor, number]> = [
  ["LocalExecutor", () => new LocalExecutor(), 1],
  ["ConcurrentExecutor", () => new ConcurrentExecutor({ maxConcurrency: 3 }), 3],
];

describe.each(executors)("random DAGs on %s", (_name, makeExecutor, limit) => {
  it("run every task exactly once, each after all its upstream tasks, within the concurrency limit", async () => {
    await fc.assert(
      fc.asyncProperty(dagArbitrary, async ({ n, edges, delays }) => {
        const unique = new Map<string, { from: number; to: number; data: boolean }>();
        for (const e of edges) if (e.from !== e.to) unique.set(`${e.from}>${e.to}`, e);
        const dataUp: number[][] = Array.from({ length: n }, () => []);
        const stateUp: number[][] = Array.from({ length: n }, () => []);
        for (const e of unique.values()) (e.data ? dataUp : stateUp)[e.to]?.push(e.from);

        const events: string[] = [];
        const received: unknown[][] = [];
        let inFlight = 0;
        let most = 0;
        const tasks = Array.from({ length: n }, (_, j) =>
          task(`t${j}`, (...args: unknown[]) => {
            events.push(`start ${j}`);
            received[j] = args.slice(0, -1);
            inFlight += 1;
            most = Math.max(most, inFlight);
            const done = () => {
              inFlight -= 1;
              events.push(`end ${j}`);
              return j;
            };
            const delay = delays[j] ?? 0;
            if (delay === 0) return done();
            if (delay === 1) return Promise.resolve().then(done);
            return new Promise((resolve) => setTimeout(() => resolve(done()), delay - 2));
          }),
        );
        const refs: Ref<unknown>[] = [];
        const flow = new Flow("random", {}, () => {
          for (let j = 0; j < n; j++) {
            const up = (dataUp[j] ?? []).map((i) => refs[i] as Ref<unknown>);
            refs[j] = (tasks[j] as (...a: unknown[]) => Ref<unknown>)(...up);
          }
        });
        for (let j = 0; j < n; j++) {
          for (const i of stateUp[j] ?? []) flow.setUpstream(refs[j] as Ref<unknown>, refs[i] as Ref<unknown>);
        }

        const result = await flow.run({ echo: false, executor: makeExecutor() });

        expect(result.state).toBe("Success");
        for (let j = 0; j < n; j++) {
          expect(events.filter((e) => e === `start ${j}`)).toHaveLength(1);
          const startedAt = events.indexOf(`start ${j}`);
          for (const i of [...(dataUp[j] ?? []), ...(stateUp[j] ?? [])]) {
            expect(events.indexOf(`end ${i}`)).toBeLessThan(startedAt);
          }
          expect(received[j]).toEqual(dataUp[j]);
        }
        expect(most).toBeLessThanOrEqual(limit);
      }),
      { numRuns: 150 },
    );
  });
});
