/**
 * `pnpm bench dispatch-local`: 200 runs of a one-task flow through one LocalAgent, each run in
 * its own runner process. Beside it, in the same run: the cost of starting a bare `node`
 * process, and of starting the runner's command doing nothing (`--help`), which bound what a
 * process per run can cost.
 *
 * Prints one JSON line:
 * {"name","runs","concurrency","runs_per_s","agent_ms_per_run","runner_ms_per_run",
 *  "bare_node_spawn_ms","runner_command_spawn_ms","runner_command"}
 * agent_ms_per_run is the agent's own time (claims, manifest reads, state writes, spawning),
 * measured inside pollOnce; runner_ms_per_run is wall time per run divided over the slots.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Flow } from "@tern/core";
import { LocalAgent, SqliteBackend, scheduleRun } from "@tern/core/runtime";

const RUNS = 200;
const CONCURRENCY = 8;

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

export async function main(): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const home = await mkdtemp(join(tmpdir(), "tern-bench-dispatch-"));
  process.env.TERN_HOME = home;
  const cli = join(root, "packages", "cli", "src", "main.ts");
  const runnerCommand = [process.execPath, "--conditions=@tern/source", "--import", "tsx", cli];
  const env = { ...process.env, NODE_OPTIONS: "" };

  const backend = await SqliteBackend.open({ path: join(home, "state.db") });
  try {
    const { flow } = (await import(pathToFileURL(join(root, "bench", "fixtures", "one-task.ts")).href)) as {
      flow: Flow;
    };
    await flow.register("bench", { backend });
    for (let i = 0; i < RUNS; i++) await scheduleRun(backend, { project: "bench", flow: flow.name });

    const agent = new LocalAgent({ backend, concurrency: CONCURRENCY, runnerCommand, leaseMs: 600_000 });
    let agentMs = 0;
    let submitted = 0;
    const t0 = performance.now();
    while (submitted < RUNS) {
      const p0 = performance.now();
      const result = await agent.pollOnce();
      agentMs += performance.now() - p0;
      submitted += result.submitted.length;
      if (result.failed.length > 0) throw new Error(`deploy failed: ${result.failed[0]?.reason}`);
      // Poll again as soon as a slot frees up.
      while (agent.activeRuns >= CONCURRENCY) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await agent.idle();
    const wallMs = performance.now() - t0;
    const runs = await backend.listRuns({ project: "bench", limit: RUNS });
    const ok = runs.filter((r) => r.state === "Success").length;
    if (ok !== RUNS)
      throw new Error(`${RUNS - ok} runs did not succeed: ${runs.find((r) => r.state !== "Success")?.reason}`);

    const bareNodeMs = await medianSpawn(process.execPath, ["-e", "0"], env);
    const runnerCommandMs = await medianSpawn(runnerCommand[0] as string, [...runnerCommand.slice(1), "--help"], env);
    console.log(
      JSON.stringify({
        name: "dispatch-local",
        runs: RUNS,
        concurrency: CONCURRENCY,
        runs_per_s: round((RUNS * 1000) / wallMs),
        agent_ms_per_run: round(agentMs / RUNS),
        runner_ms_per_run: round((wallMs * CONCURRENCY) / RUNS),
        bare_node_spawn_ms: round(bareNodeMs),
        runner_command_spawn_ms: round(runnerCommandMs),
        runner_command: "node --import tsx packages/cli/src/main.ts (sources, no build)",
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
