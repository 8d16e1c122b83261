/**
 * A burst of 1,000 runs through two agents into a throttled ECS: every run is launched exactly
 * once. The agents run in this process on one SQLite backend (DynamoDB Local, on this machine's
 * two cores, cannot feed launches faster than the fake's buckets refill, and claims under
 * contention have their own tests), ECS played by the fake with its request throttling on. The fake's buckets are set below
 * ECS's defaults (as when other launchers in the account use most of its quota), so the agents'
 * pacing (20 RunTask/s per process) runs into them and must back off; some RunTask answers are
 * lost after the task started, so retries must find the task their token already launched.
 * The fake's clock and the launch path's run SCALE times as fast as real time.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Flow } from "@tern/core";
import type { Backend } from "@tern/core/plugin";
import { LocalAgent, SqliteBackend } from "@tern/core/runtime";
import { runTaskPacer } from "@tern/env-fargate";
import { FakeEcs, scaledClock } from "@tern/test-support/fake-ecs";
import { launchOnClock } from "@tern/test-support/serverless";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

const RUNS = 1000;
const SCALE = 10;
const LOST_ANSWERS = 25;

let backend: Backend;
let ecs: FakeEcs;
let home: string;
let undoLaunchSetup: () => void;

/**
 * The backend as a Fargate agent's: tasks are told a DynamoDB table (FargateTaskEnvironment
 * refuses a backend a task cannot reach). The fake starts no task, so none ever uses it.
 */
function reachableFromTasks(sqlite: Backend): Backend {
  const url = "dynamodb://tern-burst?region=us-east-1&endpoint=http://127.0.0.1:8000";
  return new Proxy(sqlite, {
    get: (target, name) => {
      if (name === "url") return url;
      const value = Reflect.get(target, name, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "tern-burst-"));
  const clock = scaledClock(SCALE);
  ecs = await FakeEcs.start({
    clusters: ["tern"],
    launch: "none",
    startDelayMs: 0,
    clock,
    throttling: {
      runTask: { burst: 20, perSecond: 10 },
      fargateLaunches: { burst: 10, perSecond: 5 },
      registerTaskDefinition: { burst: 1, perSecond: 1 },
    },
  });
  undoLaunchSetup = launchOnClock(ecs, clock, { home, table: "tern-burst", image: "ghcr.io/tern/runner:burst" });
  backend = reachableFromTasks(await SqliteBackend.open({ path: join(home, "state.db") }));
  const { burst } = (await import("./fixtures/fargate-burst-flow.js")) as { burst: Flow };
  await burst.register("burst", { backend });
}, 90_000);

afterAll(async () => {
  undoLaunchSetup?.();
  await ecs?.close();
  await backend?.close();
  await rm(home, { recursive: true, force: true });
});

describe("a throttled burst", { timeout: 240_000 }, () => {
  it("launches each of 1,000 runs exactly once, through two agents, with none failed", async () => {
    const ids: string[] = [];
    for (let i = 0; i < RUNS; i += 50) {
      const created = await Promise.all(
        Array.from({ length: Math.min(50, RUNS - i) }, () =>
          backend.createRun({ project: "burst", flow: "fargate-burst", idempotencyKey: randomUUID() }),
        ),
      );
      ids.push(...created.map(({ run }) => run.id));
    }
    ecs.loseNextRunTaskAnswers(LOST_ANSWERS);
    const agents = ["agent-a", "agent-b"].map(
      (agentId) =>
        new LocalAgent({
          backend,
          agentId,
          runnerCommand: ["tern"],
          environmentTypes: ["FargateTaskEnvironment"],
          concurrency: 10_000,
          // The fake starts no runner, so no run leaves Submitted: the sweep must not end them meanwhile.
          submittedGraceMs: 600_000,
        }),
    );
    // Both agents poll until every run has its task.
    const runs = await vi.waitFor(
      async () => {
        await Promise.all(agents.map((agent) => agent.pollOnce()));
        const runs = await backend.listRuns({ project: "burst", limit: RUNS * 2 });
        const waiting = runs.filter((run) => run.deployment?.taskArn === undefined).length;
        if (waiting > 0) throw new Error(`${waiting} of ${runs.length} runs have no task yet`);
        return runs;
      },
      { timeout: 200_000, interval: 100 },
    );

    expect(runs).toHaveLength(RUNS);
    expect(
      runs.filter((run) => run.state !== "Submitted").map((run) => `${run.id} ${run.state} ${run.reason}`),
    ).toEqual([]);
    // The scenario happened: ECS refused calls for their rate, and answers were lost after launching.
    const refused = ecs.throttled;
    expect(refused.runTask + refused.fargateLaunches).toBeGreaterThan(0);
    expect(runTaskPacer.rate).toBeLessThan(20);
    const runTasks = ecs.callLog.filter((call) => call.operation === "RunTask");
    expect(runTasks.length).toBeGreaterThanOrEqual(RUNS + LOST_ANSWERS);
    // Exactly once: one task per run, and it is the task each run records.
    const taskOfRun = new Map<string, string[]>();
    for (const task of ecs.launchedTasks) {
      const runId = task.tags?.find((tag) => tag.key === "tern:run-id")?.value ?? "?";
      taskOfRun.set(runId, [...(taskOfRun.get(runId) ?? []), task.taskArn as string]);
    }
    expect(ecs.launchedTasks).toHaveLength(RUNS);
    expect([...taskOfRun.keys()].sort()).toEqual([...ids].sort());
    for (const run of runs) expect(taskOfRun.get(run.id)).toEqual([run.deployment?.taskArn]);
    console.log(
      JSON.stringify({
        runs: RUNS,
        run_task_calls: runTasks.length,
        throttled: refused,
        handed_back: runs.filter((run) => run.attempts > 1).length,
        pacer_rate: Math.round(runTaskPacer.rate * 10) / 10,
      }),
    );
  });
});
