/**
 * `pnpm bench fargate`: 200 runs of one flow on a FargateTaskEnvironment, dispatched by one
 * LocalAgent (state in DynamoDB Local) to the fake ECS of test/support/fake-ecs.ts, which starts
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
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ECSClient, RunTaskCommand } from "@aws-sdk/client-ecs";
import { type Flow, LocalAgent, scheduleRun } from "@tern/core";

const RUNS = 200;

const round = (n: number) => Math.round(n * 100) / 100;

export async function main(): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  let local: typeof import("../packages/backend-dynamodb/test/dynamodb-local.js");
  let server: Awaited<ReturnType<typeof local.startDynamoDbLocal>>;
  try {
    local = await import("../packages/backend-dynamodb/test/dynamodb-local.js");
    server = await local.startDynamoDbLocal();
  } catch (error) {
    console.log(JSON.stringify({ name: "fargate", skipped: (error as Error).message }));
    return;
  }
  const home = await mkdtemp(join(tmpdir(), "tern-bench-fargate-"));
  const { FakeEcs } = await import("../test/support/fake-ecs.js");
  const { setEcsClientFactory } = await import("@tern/env-fargate");
  const { openLocalTable, serverlessEnv, setEnv } = await import("../test/support/serverless.js");
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
