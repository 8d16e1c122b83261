/**
 * `pnpm bench runner`: the DAG runner's overhead per task on ConcurrentExecutor, for a wide flow
 * (independent tasks) and a chain (each task waits for the previous one), each beside a baseline
 * of the same number of bare async calls awaited the same way, in the same process.
 *
 * Prints one JSON line per case:
 * {"name","tasks","tern_ms","baseline_ms","overhead_us_per_task","heap_bytes_per_task", ...}
 * Goal: overhead_us_per_task <= 20 and heap_bytes_per_task <= 2048.
 */
import { ConcurrentExecutor, Flow, type Ref, task } from "@tern/core";

const TASKS = 10_000;
const MAX_CONCURRENCY = 100;
const REPEATS = 7;

const gc = (globalThis as { gc?: () => void }).gc;

function collect(): void {
  if (gc === undefined) {
    throw new Error("bench/runner needs --expose-gc to measure heap; run it with `pnpm bench runner`.");
  }
  gc();
  gc();
}

const inc = async (x: number) => x + 1;
const one = async () => 1;

function wideFlow(n: number): Flow {
  const t = task("work", one);
  return new Flow("wide", { executor: new ConcurrentExecutor({ maxConcurrency: MAX_CONCURRENCY }) }, () => {
    for (let i = 0; i < n; i++) t();
  });
}

function chainFlow(n: number): Flow {
  const t = task("step", inc);
  return new Flow("chain", { executor: new ConcurrentExecutor({ maxConcurrency: MAX_CONCURRENCY }) }, () => {
    let ref: Ref<number> = t(0);
    for (let i = 1; i < n; i++) ref = t(ref);
    return { last: ref };
  });
}

/** The same calls with a pool of MAX_CONCURRENCY workers, as the executor allows. */
async function wideBaseline(n: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_CONCURRENCY, n) }, worker));
}

/** The same calls awaited one after the other. */
async function chainBaseline(n: number): Promise<void> {
  let value = 0;
  for (let i = 0; i < n; i++) value = await inc(value);
  if (value !== n) throw new Error("baseline chain miscounted");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function measure(name: string, makeFlow: (n: number) => Flow, baseline: (n: number) => Promise<void>) {
  // Warm up both paths so the JIT has compiled them before timing.
  for (let i = 0; i < 3; i++) {
    await makeFlow(1_000).run({ echo: false });
    await baseline(1_000);
  }

  collect();
  const heapBeforeBuild = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const flow = makeFlow(TASKS);
  const buildMs = performance.now() - t0;
  collect();
  const definitionBytes = process.memoryUsage().heapUsed - heapBeforeBuild;

  const ternMs: number[] = [];
  const baselineMs: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    // Alternate so that drift (GC, CPU frequency) hits both sides alike.
    baselineMs.push(await time(() => baseline(TASKS)));
    ternMs.push(
      await time(async () => {
        const run = await flow.run({ echo: false });
        if (run.state !== "Success") throw new Error(`${name}: run ended ${run.state}: ${run.message}`);
      }),
    );
  }

  collect();
  const heapBeforeRun = process.memoryUsage().heapUsed;
  const kept = await flow.run({ echo: false });
  collect();
  const runBytes = process.memoryUsage().heapUsed - heapBeforeRun;
  if (kept.taskRuns.length !== TASKS) throw new Error("unexpected task-run count");

  const tern = median(ternMs);
  const base = median(baselineMs);
  return {
    name,
    tasks: TASKS,
    tern_ms: round(tern),
    baseline_ms: round(base),
    overhead_us_per_task: round(((tern - base) * 1000) / TASKS),
    heap_bytes_per_task: Math.round(runBytes / TASKS),
    definition_bytes_per_task: Math.round(definitionBytes / TASKS),
    build_ms: round(buildMs),
    executor: `ConcurrentExecutor(maxConcurrency=${MAX_CONCURRENCY})`,
    repeats: REPEATS,
    node: process.version,
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

export async function main(): Promise<void> {
  console.log(JSON.stringify(await measure("wide", wideFlow, wideBaseline)));
  console.log(JSON.stringify(await measure("chain", chainFlow, chainBaseline)));
}
