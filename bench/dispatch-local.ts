/**
 * `pnpm bench dispatch-local`: 200 runs of a one-task flow through one LocalAgent, each run in
 * its own runner process started with the command `pnpm tern agent` gives its runners (the CLI
 * compiled from the sources, see packages/cli/src/source-runner.ts). Beside it, in the same run:
 * the cost of starting a bare `node` process, and of starting the runner's command doing nothing
 * (`--help`), which bound what a process per run can cost.
 *
 * Prints one JSON line:
 * {"name","runs","concurrency","runs_per_s","agent_ms_per_run","slot_ms_per_run",
 *  "runner_ms_per_run","bare_node_spawn_ms","runner_ratio","runner_command_spawn_ms",
 *  "runner_command","goal","goal_met"}
 * runs_per_s is over the 200 runs at concurrency 8; agent_ms_per_run is the agent's own time
 * (claims, manifest reads, state writes, spawning), measured inside pollOnce; slot_ms_per_run is
 * their wall time divided over the slots (8 processes sharing the machine's cores). Then 21 runs
 * one at a time: runner_ms_per_run is their median time from the runner's spawn to its exit,
 * measured like the bare node spawn beside it (one process at a time), and runner_ratio the
 * ratio of the two. Goal: a ratio of at most 3 and at least 8 runs/s.
 *
 * `pnpm bench dispatch-local tsx` runs the runners from the sources through tsx, as before.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Flow } from "@tern/core";
import { LocalAgent, SqliteBackend, scheduleRun } from "@tern/core/runtime";
import { sourceRunnerCommand } from "../packages/cli/src/source-runner.js";

const RUNS = 200;
const CONCURRENCY = 8;
/** Runs after the concurrent ones, one at a time, for the runner's own time. */
const SEQUENTIAL_RUNS = 21;
const GOAL_RATIO = 3;
const GOAL_RUNS_PER_S = 8;

function spawnMs(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: "ignore", env });
    child.once("error", reject);
    child.once("close", () => resolve(performance.now() - t0));
  });
}

async function medianSpawn(command: string, args: readonly string[], env: NodeJS.ProcessEnv, n = 10): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push(await spawnMs(command, args, env));
  times.sort((a, b) => a - b);
  return times[Math.floor(n / 2)] as number;
}

/** Runs `runs` scheduled runs through `agent`, polling again as soon as a slot frees up. */
async function dispatchAll(
  agent: LocalAgent,
  runs: number,
  concurrency: number,
): Promise<{ wallMs: number; agentMs: number }> {
  let agentMs = 0;
  let submitted = 0;
  const t0 = performance.now();
  while (submitted < runs) {
    const p0 = performance.now();
    const result = await agent.pollOnce();
    agentMs += performance.now() - p0;
    submitted += result.submitted.length;
    if (result.failed.length > 0) throw new Error(`deploy failed: ${result.failed[0]?.reason}`);
    while (agent.activeRuns >= concurrency) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await agent.idle();
  return { wallMs: performance.now() - t0, agentMs };
}

/**
 * One run at a time, `runs` times: the median time from the runner's spawn to the end of its
 * run (the agent's claim and state writes, measured inside pollOnce, left out). Like the bare
 * node spawn it is compared with, one process on an otherwise idle machine.
 */
async function medianRunnerMs(agent: LocalAgent, runs: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const result = await agent.pollOnce();
    // pollOnce returns once the runner is spawned: what follows is the runner's own time.
    const t0 = performance.now();
    if (result.submitted.length !== 1) throw new Error(`expected one run submitted, got ${JSON.stringify(result)}`);
    await agent.idle();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(runs / 2)] as number;
}

export async function main(args: readonly string[] = []): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const home = await mkdtemp(join(tmpdir(), "tern-bench-dispatch-"));
  process.env.TERN_HOME = home;
  // `pnpm bench dispatch-local tsx`: the runner as it started before, from the sources through tsx.
  const fromSources = args.includes("tsx");
  const runnerCommand = fromSources
    ? [
        process.execPath,
        "--conditions=@tern/source",
        "--import",
        "tsx",
        join(root, "packages", "cli", "src", "main.ts"),
      ]
    : // Built (or taken from the cache) before the clock starts, as `pnpm tern agent` does at its start.
      sourceRunnerCommand();
  const env = { ...process.env, NODE_OPTIONS: "" };

  const backend = await SqliteBackend.open({ path: join(home, "state.db") });
  try {
    const { flow } = (await import(pathToFileURL(join(root, "bench", "fixtures", "one-task.ts")).href)) as {
      flow: Flow;
    };
    await flow.register("bench", { backend });
    const total = RUNS + SEQUENTIAL_RUNS;
    for (let i = 0; i < total; i++) await scheduleRun(backend, { project: "bench", flow: flow.name });

    const options = { backend, runnerCommand, leaseMs: 600_000 };
    const { wallMs, agentMs } = await dispatchAll(
      new LocalAgent({ ...options, concurrency: CONCURRENCY }),
      RUNS,
      CONCURRENCY,
    );
    const runnerMs = await medianRunnerMs(new LocalAgent({ ...options, concurrency: 1 }), SEQUENTIAL_RUNS);
    const runs = await backend.listRuns({ project: "bench", limit: total });
    const ok = runs.filter((r) => r.state === "Success").length;
    if (ok !== total)
      throw new Error(`${total - ok} runs did not succeed: ${runs.find((r) => r.state !== "Success")?.reason}`);

    const bareNodeMs = await medianSpawn(process.execPath, ["-e", "0"], env);
    const runnerCommandMs = await medianSpawn(runnerCommand[0] as string, [...runnerCommand.slice(1), "--help"], env);
    const runsPerS = (RUNS * 1000) / wallMs;
    const ratio = runnerMs / bareNodeMs;
    console.log(
      JSON.stringify({
        name: "dispatch-local",
        runs: RUNS,
        concurrency: CONCURRENCY,
        runs_per_s: round(runsPerS),
        agent_ms_per_run: round(agentMs / RUNS),
        slot_ms_per_run: round((wallMs * CONCURRENCY) / RUNS),
        runner_ms_per_run: round(runnerMs),
        bare_node_spawn_ms: round(bareNodeMs),
        runner_ratio: round(ratio),
        runner_command_spawn_ms: round(runnerCommandMs),
        runner_command: fromSources
          ? "node --import tsx packages/cli/src/main.ts (the sources through tsx)"
          : `node ${relative(root, runnerCommand[1] as string)} (the CLI compiled from the sources)`,
        goal: { max_runner_ratio: GOAL_RATIO, min_runs_per_s: GOAL_RUNS_PER_S },
        goal_met: ratio <= GOAL_RATIO && runsPerS >= GOAL_RUNS_PER_S,
        node: process.version,
      }),
    );
  } finally {
    await backend.close();
    await rm(home, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
