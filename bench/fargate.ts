/**
 * `pnpm bench fargate`: 200 runs of one flow on a FargateTaskEnvironment, dispatched by one
 * LocalAgent (state in DynamoDB Local) to the fake ECS of @tern/test-support/fake-ecs, which starts
 * no process (`launch: "none"`): this measures dispatch, not runs.
 *
 * Prints one JSON line:
 * {"name","runs","ecs_calls":{operation: count},"ecs_calls_per_run":{...},"goal_met",
 *  "agent_ms_per_dispatch","pacing_floor_ms","bare_run_task_ms"}
 * Goal: RegisterTaskDefinition 1 in all, DescribeTaskDefinition at most 1 in all, RunTask 1 per
 * run. agent_ms_per_dispatch is the agent's wall time in pollOnce per run; RunTask is paced to
 * 20 calls/s per process (ECS's account limit), so 50 ms per dispatch is the floor when runs
 * queue up. bare_run_task_ms, the baseline measured in the same run, is one RunTask through the
 * SDK to the same fake without tern.
 *
 * Then the throttled case: 1,000 runs queued at once, the fake's ECS throttling on (RunTask
 * burst 100 and 40/s, Fargate launches burst 100 and 20/s, RegisterTaskDefinition 1/s), each
 * deployed as an agent deploys it (setup, then execute) all at once, a run handed back deployed
 * again. `pnpm bench fargate throttled` runs this case alone (it needs no Java). One JSON line:
 * {"name":"fargate-throttled","runs","launched","failed_runs","handed_back","run_task_calls",
 *  "run_task_calls_per_run","throttled","launches_per_s","launch_rate_ratio","time_scale",
 *  "fake_seconds","wall_seconds","goal_met"}
 * launch_rate_ratio is launches per second, on the fake's clock, from the first RunTask to the
 * last launch, over Fargate's 20/s. Goal: ratio >= 0.9, no failed run, every run launched
 * exactly once, at most 1.05 RunTask calls per run. The fake's clock (and the launch path's,
 * through setLaunchClock) runs TERN_BENCH_TIME_SCALE times as fast as real time (default 4), so
 * the case takes about 12 s instead of 50; see bench/README.md.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ECSClient, RunTaskCommand } from "@aws-sdk/client-ecs";
import type { Flow, Storage } from "@tern/core";
import type { FlowVersionRecord, JsonValue, Manifest, RunRecord } from "@tern/core/plugin";
import { LocalAgent, scheduleRun } from "@tern/core/runtime";
import { startDynamoDbLocalOrSkip } from "./support/dynamodb-local.js";

const RUNS = 200;
const THROTTLED_RUNS = 1000;
/** Fargate's sustained task-launch rate, per account and Region. */
const FARGATE_LAUNCHES_PER_S = 20;

const round = (n: number) => Math.round(n * 100) / 100;

export async function main(args: readonly string[] = []): Promise<void> {
  if (args[0] !== "throttled") await dispatchCase();
  await throttledCase();
}

async function dispatchCase(): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const server = await startDynamoDbLocalOrSkip({ name: "fargate" });
  if (server === undefined) return;
  const home = await mkdtemp(join(tmpdir(), "tern-bench-fargate-"));
  const { FakeEcs } = await import("@tern/test-support/fake-ecs");
  const { setEcsClientFactory } = await import("@tern/env-fargate");
  const { openLocalTable, serverlessEnv, setEnv } = await import("@tern/test-support/serverless");
  const ecs = await FakeEcs.start({ clusters: ["tern"], launch: "none", startDelayMs: 0 });
  const credentials = { accessKeyId: "bench", secretAccessKey: "bench" };
  // The agent's environment as the stack sets it (the flow itself stays in local storage).
  setEnv(
    serverlessEnv({
      home,
      table: "tern-bench",
      dynamodbEndpoint: server.endpoint,
      ecsEndpoint: ecs.endpoint,
      image: "ghcr.io/tern/runner:bench",
    }),
  );
  const ecsClient = new ECSClient({ region: "us-east-1", endpoint: ecs.endpoint, credentials });
  setEcsClientFactory(() => ecsClient);
  try {
    const backend = await openLocalTable(server.endpoint, "tern-bench");
    const { flow } = (await import(pathToFileURL(join(root, "bench", "fixtures", "fargate-flow.ts")).href)) as {
      flow: Flow;
    };
    await flow.register("bench", { backend });
    for (let i = 0; i < RUNS; i++) await scheduleRun(backend, { project: "bench", flow: flow.name });

    const agent = new LocalAgent({ backend, runnerCommand: ["tern"], concurrency: RUNS, leaseMs: 600_000 });
    let submitted = 0;
    let agentMs = 0;
    while (submitted < RUNS) {
      const t0 = performance.now();
      const result = await agent.pollOnce();
      agentMs += performance.now() - t0;
      if (result.failed.length > 0) throw new Error(`dispatch failed: ${result.failed[0]?.reason}`);
      if (result.submitted.length === 0) throw new Error(`only ${submitted} of ${RUNS} runs were dispatched`);
      submitted += result.submitted.length;
    }
    const calls = { ...ecs.calls };

    // Baseline: the same RunTask, straight through the SDK, without tern (and without pacing).
    const [definition] = ecs.taskDefinitions("tern-fargate-bench");
    const samples: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      await ecsClient.send(
        new RunTaskCommand({
          cluster: "tern",
          taskDefinition: definition?.taskDefinitionArn,
          launchType: "FARGATE",
          networkConfiguration: { awsvpcConfiguration: { subnets: ["subnet-0123456789abcdef0"] } },
        }),
      );
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    const perRun = Object.fromEntries(Object.entries(calls).map(([op, n]) => [op, round(n / RUNS)]));
    console.log(
      JSON.stringify({
        name: "fargate",
        runs: RUNS,
        ecs_calls: calls,
        ecs_calls_per_run: perRun,
        goal_met: calls.RegisterTaskDefinition === 1 && calls.DescribeTaskDefinition <= 1 && calls.RunTask === RUNS,
        agent_ms_per_dispatch: round(agentMs / RUNS),
        pacing_floor_ms: 50,
        bare_run_task_ms: round(samples[Math.floor(samples.length / 2)] as number),
      }),
    );
    await backend.close();
  } finally {
    setEcsClientFactory(undefined);
    ecsClient.destroy();
    await ecs.close();
    await server.stop();
    await rm(home, { recursive: true, force: true });
  }
}

/** 1,000 runs queued at once against the fake's ECS throttling (see the header). */
async function throttledCase(): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), "tern-bench-fargate-throttled-"));
  const flowName = "fargate-bench";
  const { FakeEcs, scaledClock } = await import("@tern/test-support/fake-ecs");
  const { FargateTaskEnvironment } = await import("@tern/env-fargate");
  const { launchOnClock } = await import("@tern/test-support/serverless");
  const timeScale = Number(process.env.TERN_BENCH_TIME_SCALE ?? 4);
  const clock = scaledClock(timeScale);
  const ecs = await FakeEcs.start({ clusters: ["tern"], launch: "none", startDelayMs: 0, clock });
  const undoLaunchSetup = launchOnClock(ecs, clock, { home, table: "tern-bench", image: "ghcr.io/tern/runner:bench" });
  try {
    const flowVersion = {
      project: "bench",
      flow: flowName,
      version: 1,
      labels: [],
      storage: { type: "LocalStorage", options: {} },
      location: "bench",
      manifestHash: "0".repeat(64),
      environmentType: "FargateTaskEnvironment",
      createdAtMs: Date.now(),
    } as FlowVersionRecord;
    const manifest = { flow: { name: flowName } } as unknown as Manifest;
    const storage = {} as Storage;
    ecs.setThrottling(true);
    const wall0 = performance.now();
    const failed: string[] = [];
    let handedBack = 0;
    // Each run as an agent deploys it: an environment of its own (setup, then execute); a run
    // handed back (LaunchUncertainError) is deployed again with its recorded launch number, as
    // the sweep and the next agent would.
    const launchRun = async (id: string): Promise<void> => {
      let deployment: Record<string, JsonValue> | undefined;
      for (;;) {
        const environment = new FargateTaskEnvironment({});
        try {
          await environment.setup(storage, { flowVersion, manifest, annotate: async () => {} });
          const run = {
            id,
            project: "bench",
            flow: flowName,
            version: 1,
            state: "Submitted",
            revision: 1,
            labels: [],
            parameters: {},
            scheduledAtMs: 0,
            createdAtMs: 0,
            updatedAtMs: 0,
            attempts: 1,
            ...(deployment === undefined ? {} : { deployment }),
          } as RunRecord;
          await environment.execute(storage, "bench", {
            run,
            flowVersion,
            manifest,
            runnerCommand: ["tern"],
            runnerEnv: {},
            backendUrl: process.env.TERN_BACKEND,
            saveDeployment: async (details) => {
              deployment = details;
            },
          });
          return;
        } catch (error) {
          if ((error as { code?: string }).code === "LAUNCH_UNCERTAIN") {
            handedBack += 1;
            continue;
          }
          failed.push((error as Error).message);
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: THROTTLED_RUNS }, () => launchRun(randomUUID())));
    const wallSeconds = (performance.now() - wall0) / 1000;
    const launches = ecs.launchTimes;
    const runTasks = ecs.callLog.filter((call) => call.operation === "RunTask");
    const first = runTasks[0]?.atMs ?? 0;
    const last = launches.at(-1) ?? first;
    const fakeSeconds = (last - first) / 1000;
    const launchesPerS = fakeSeconds > 0 ? launches.length / fakeSeconds : 0;
    const ratio = launchesPerS / FARGATE_LAUNCHES_PER_S;
    const launchedRuns = new Set(
      ecs.launchedTasks.map((task) => task.tags?.find((tag) => tag.key === "tern:run-id")?.value),
    );
    const callsPerRun = runTasks.length / THROTTLED_RUNS;
    console.log(
      JSON.stringify({
        name: "fargate-throttled",
        runs: THROTTLED_RUNS,
        launched: launches.length,
        launched_runs: launchedRuns.size,
        failed_runs: failed.length,
        ...(failed.length === 0 ? {} : { first_failure: failed[0] }),
        handed_back: handedBack,
        run_task_calls: runTasks.length,
        run_task_calls_per_run: round(callsPerRun * 1000) / 1000,
        ecs_calls: ecs.calls,
        throttled: ecs.throttled,
        launches_per_s: round(launchesPerS),
        launch_rate_ratio: round(ratio),
        time_scale: timeScale,
        fake_seconds: round(fakeSeconds),
        wall_seconds: round(wallSeconds),
        goal_met:
          ratio >= 0.9 &&
          failed.length === 0 &&
          launches.length === THROTTLED_RUNS &&
          launchedRuns.size === THROTTLED_RUNS &&
          callsPerRun <= 1.05,
      }),
    );
  } finally {
    undoLaunchSetup();
    await ecs.close();
    await rm(home, { recursive: true, force: true });
  }
}
