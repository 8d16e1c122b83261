/**
 * FargateTaskEnvironment end to end: flows stored in S3 (s3rver), state in DynamoDB Local, the
 * agent in this process, ECS played by the fake of @tern/test-support/fake-ecs, and each task's
 * runner a real `tern execute` process started through the runner image's entrypoint script.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Flow } from "@tern/core";
import { type Backend, isTerminalRunState, type RunRecord } from "@tern/core/plugin";
import { LocalAgent, scheduleRun, sweepRuns } from "@tern/core/runtime";
import { clientToken, setEcsClientFactory } from "@tern/env-fargate";
import { ECS_MESSAGES, FakeEcs, type FakeEcsOptions } from "@tern/test-support/fake-ecs";
import {
  agentEnv,
  driveRuns,
  type FargateServers,
  startFargateServers,
  useFakeEcs as useEcs,
  writeTernShim,
} from "@tern/test-support/fargate-setup";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ROOT, runTern } from "./support/cli.js";

const ENTRYPOINT = join(ROOT, "packages", "env-fargate", "docker", "entrypoint.sh");
const IMAGE = "ghcr.io/tern/runner:test";
const AGENT_ENV = agentEnv(IMAGE);

let servers: FargateServers;
let backend: Backend;
let dir: string;
/** The ECS of most tests, shared so that counts show what a whole series of runs cost. */
let ecs: FakeEcs;

/** A fake ECS whose tasks run `tern execute` (from the sources) through the image's entrypoint. */
async function fakeEcs(options: FakeEcsOptions = {}): Promise<FakeEcs> {
  const fake = await FakeEcs.start({
    clusters: ["tern"],
    runner: {
      command: ["sh", ENTRYPOINT, "tern"],
      cwd: ROOT,
      env: { PATH: `${join(dir, "bin")}:${process.env.PATH ?? ""}`, TERN_HOME: join(dir, "runner-home") },
    },
    pullableImages: (image) => image === IMAGE,
    ...options,
  });
  useEcs(fake);
  return fake;
}

/** The tasks launched for a run (the overrides carry its id). */
const tasksOf = (fake: FakeEcs, runId: string) =>
  fake.launchedTasks.filter((t) => t.environment?.TERN_RUN_ID === runId);

/** RunTask calls made for a run. */
const runTasksOf = (fake: FakeEcs, runId: string) =>
  fake.callLog
    .filter((c) => c.operation === "RunTask")
    .map((c) => c.input as { clientToken: string })
    .filter((input) => input.clientToken.startsWith(`tern-${runId}-`));

function agent(options: { backend?: Backend } = {}): LocalAgent {
  return new LocalAgent({ backend: options.backend ?? backend, runnerCommand: ["tern"], concurrency: 50 });
}

/** Polls `a` until every run is in a final state; returns them. */
const drive = (a: LocalAgent, ids: readonly string[], timeoutMs = 45_000) => driveRuns(backend, a, ids, timeoutMs);

/** The run once it is in `state`; fails as soon as it ends in another state, or after `timeoutMs`. */
async function waitForState(id: string, state: RunRecord["state"], timeoutMs = 20_000): Promise<RunRecord> {
  const run = await vi.waitFor(
    async () => {
      const run = (await backend.getRun(id)) as RunRecord;
      if (run.state !== state && !isTerminalRunState(run.state)) {
        throw new Error(`run ${id} is ${run.state} (${run.reason ?? ""}), expected ${state}`);
      }
      return run;
    },
    { timeout: timeoutMs, interval: 100 },
  );
  expect(run.state, `run ${id} is ${run.state} (${run.reason ?? ""}), expected ${state}`).toBe(state);
  return run;
}

const schedule = async (flow: string, parameters: Record<string, number> = {}) =>
  (await scheduleRun(backend, { project: "fargate", flow, parameters })).run.id;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tern-fargate-"));
  // `tern` on the task's PATH: the CLI from the sources, as the image's /usr/local/bin/tern.
  await writeTernShim(dir);
  servers = await startFargateServers({
    table: "tern-fargate",
    buckets: ["tern-fargate"],
    env: { ...AGENT_ENV, TERN_HOME: join(dir, "agent-home") },
  });
  backend = servers.backend;
  const module = (await import("@tern/test-support/fargate-flows")) as { etl: Flow; brokenImage: Flow };
  for (const flow of [module.etl, module.brokenImage]) await flow.register("fargate", { backend });
  ecs = await fakeEcs();
}, 90_000);

afterAll(async () => {
  await ecs?.close();
  setEcsClientFactory(undefined);
  await servers?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("FargateTaskEnvironment through the agent, the fake ECS and runner processes", { timeout: 90_000 }, () => {
  // First, on the fresh fake: what a series of runs costs in ECS calls.
  it("registers the task definition once for 20 runs of one flow", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await schedule("fargate-etl"));
    const runs = await drive(agent(), ids, 80_000);
    expect(runs.map((r) => r.state)).toEqual(Array(20).fill("Success"));
    expect(ecs.calls.RegisterTaskDefinition).toBe(1);
    expect(ecs.calls.DescribeTaskDefinition).toBeLessThanOrEqual(1);
    expect(ecs.calls.RunTask).toBe(20);
    expect(new Set(runs.map((r) => r.deployment?.taskDefinitionArn)).size).toBe(1);
    const [definition] = ecs.taskDefinitions("tern-fargate-etl");
    expect(definition).toMatchObject({
      cpu: "256",
      memory: "512",
      executionRoleArn: AGENT_ENV.TERN_ECS_EXECUTION_ROLE_ARN,
    });
  });

  it("runs a flow stored in S3 to Success, with the task ARN on the run and only pointers in the overrides", async () => {
    const id = await schedule("fargate-etl");
    const [run] = await drive(agent(), [id]);
    expect(run?.state, run?.reason).toBe("Success");
    expect(run?.outputs?.total).toEqual({ kind: "json", value: 6 });
    const [task] = tasksOf(ecs, id);
    expect(run?.deployment).toMatchObject({
      kind: "ecs-task",
      taskArn: task?.taskArn,
      clientToken: clientToken(id, 0),
    });
    // The runner reports, then exits: the task stops just after the run ends.
    const described = await ecs.waitForTask(task?.taskArn as string, "STOPPED");
    expect(described?.lastStatus).toBe("STOPPED");
    expect(described?.containers?.[0]?.exitCode).toBe(0);
    expect(described?.overrides?.containerOverrides?.[0]?.environment?.map((e) => e.name)).toEqual([
      "TERN_RUN_ID",
      "TERN_BACKEND",
    ]);
    expect(ecs.output(task?.taskArn as string)).toMatch(/runner: run .* Success/);
  });

  it("retries a capacity failure with a new token and then succeeds, with one task", async () => {
    ecs.failNextRunTasks([{ reason: ECS_MESSAGES.capacityUnavailable }]);
    const id = await schedule("fargate-etl");
    const [run] = await drive(agent(), [id]);
    expect(run?.state, run?.reason).toBe("Success");
    // (An SDK retry of a call repeats its token; the agent's own retry takes the next one.)
    expect([...new Set(runTasksOf(ecs, id).map((i) => i.clientToken))]).toEqual([
      clientToken(id, 0),
      clientToken(id, 1),
    ]);
    expect(tasksOf(ecs, id)).toHaveLength(1);
  });

  it("relaunches a task that failed to start for a passing reason (network interface timeout)", async () => {
    ecs.injectLaunchOutcomes([{ kind: "fail-to-start", stoppedReason: ECS_MESSAGES.networkInterfaceTimeout }]);
    const id = await schedule("fargate-etl");
    const [run] = await drive(agent(), [id]);
    expect(run?.state, run?.reason).toBe("Success");
    expect(tasksOf(ecs, id)).toHaveLength(2);
    expect(run?.deployment).toMatchObject({
      relaunches: 1,
      previousTasks: [{ reason: expect.stringMatching(/network interface/) }],
    });
    const history = await backend.getRunHistory(id);
    expect(history.map((h) => h.state)).toEqual([
      "Scheduled",
      "Submitted",
      "Scheduled",
      "Submitted",
      "Running",
      "Success",
    ]);
  });

  it("fails a run whose image cannot be pulled, saying so", async () => {
    const id = await schedule("fargate-broken-image");
    const [run] = await drive(agent(), [id]);
    expect(run?.state).toBe("Failed");
    expect(run?.reason).toMatch(
      /could not pull the runner image ghcr\.io\/acme\/does-not-exist:1: CannotPullContainerError/,
    );
    expect(tasksOf(ecs, id)).toHaveLength(1);
  });

  it("fails a run whose runner was killed for memory, saying so", async () => {
    ecs.injectLaunchOutcomes([{ kind: "oom", afterMs: 2_500 }]);
    const id = await schedule("fargate-etl", { sleepMs: 20_000 });
    const [run] = await drive(agent(), [id]);
    expect(run?.state).toBe("Failed");
    expect(run?.reason).toMatch(/ran out of memory: the runner was killed \(exit code 137.*512 MiB/);
  });

  it("cancels a running run: the task gets StopTask with a reason, the run ends Cancelled", async () => {
    const id = await schedule("fargate-etl", { sleepMs: 30_000 });
    const a = agent();
    await a.pollOnce();
    const running = await waitForState(id, "Running");
    await backend.transitionRun({
      runId: id,
      expectedRevision: running.revision,
      to: "Cancelling",
      reason: "cancelled by the test",
    });
    const [run] = await drive(a, [id]);
    expect(run?.state, run?.reason).toBe("Cancelled");
    const stops = ecs.callLog.filter((c) => c.operation === "StopTask").map((c) => c.input as { reason: string });
    expect(stops).toEqual([expect.objectContaining({ reason: `tern: run ${id} was cancelled` })]);
    expect(tasksOf(ecs, id)[0]?.stopCode).toBe("UserInitiated");
  });

  it("runs through `tern agent --once` and `tern cancel`, the CLI loading the Fargate environment on demand", async () => {
    const env = {
      ...AGENT_ENV,
      TERN_HOME: join(dir, "cli-home"),
      TERN_BACKEND: backend.url,
      AWS_ENDPOINT_URL_ECS: ecs.endpoint,
      TERN_TEST_S3_ENDPOINT: process.env.TERN_TEST_S3_ENDPOINT ?? "",
    };
    const started = await runTern(["run", "fargate-etl", "--project", "fargate", "--json"], env);
    expect(started.code, started.stderr).toBe(0);
    const { id } = JSON.parse(started.stdout) as { id: string };
    const agent = await runTern(["agent", "--once"], env);
    expect(agent.code, agent.stderr).toBe(0);
    expect(tasksOf(ecs, id)).toHaveLength(1);
    expect((await waitForState(id, "Success")).deployment).toMatchObject({ kind: "ecs-task" });
    const shown = await runTern(["runs", "show", id], env);
    expect(shown.stdout).toMatch(
      /deployed {4}ECS task arn:aws:ecs:.*:task\/tern\/[0-9a-f]{32} \(cluster tern, us-east-1, logs \/tern\/runs tern\/tern-runner\/[0-9a-f]{32}\)/,
    );

    const { run: long } = await scheduleRun(backend, {
      project: "fargate",
      flow: "fargate-etl",
      parameters: { sleepMs: 30_000 },
    });
    expect((await runTern(["agent", "--once"], env)).code).toBe(0);
    await waitForState(long.id, "Running");
    const cancel = await runTern(["cancel", long.id], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    // The runner sees Cancelling and stops the flow itself (or the next agent's sweep stops the
    // task if it does not): either way the run ends Cancelled and the task stops.
    expect((await runTern(["agent", "--once"], env)).code).toBe(0);
    expect((await waitForState(long.id, "Cancelled")).state).toBe("Cancelled");
    const [task] = tasksOf(ecs, long.id);
    expect((await ecs.waitForTask(task?.taskArn as string, "STOPPED")).lastStatus).toBe("STOPPED");
  });

  it("starts no second task when an agent dies after RunTask and another takes the run over", async () => {
    // Slow task starts: the run is still Submitted (no runner yet) when the second agent looks.
    const slow = await fakeEcs({ startDelayMs: 4_000 });
    try {
      const id = await schedule("fargate-etl");
      // The first agent "dies" between RunTask and recording the task: its write never returns.
      const frozen = new Proxy(backend, {
        get(target, property, receiver) {
          if (property === "transitionRun") {
            return (input: Parameters<Backend["transitionRun"]>[0]) =>
              input.deployment?.launched === true ? new Promise(() => {}) : target.transitionRun(input);
          }
          const value = Reflect.get(target, property, receiver);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      void agent({ backend: frozen }).pollOnce();
      await expect.poll(() => slow.calls.RunTask, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(1);
      const stuck = await backend.getRun(id);
      expect(stuck).toMatchObject({ state: "Submitted" });
      expect(stuck?.deployment?.launched).not.toBe(true);
      // The next agent's sweep (grace 0 here) hands the unrecorded launch back; it launches again.
      expect(await sweepRuns(backend, { submittedGraceMs: 0 })).toEqual([
        expect.objectContaining({ runId: id, to: "Scheduled" }),
      ]);
      const [run] = await drive(agent(), [id]);
      expect(run?.state, run?.reason).toBe("Success");
      // Both agents' calls (and any retry the SDK made of either) carried the same token.
      const tokens = runTasksOf(slow, id).map((i) => i.clientToken);
      expect(tokens.length).toBeGreaterThanOrEqual(2);
      expect(new Set(tokens)).toEqual(new Set([clientToken(id, 0)]));
      expect(tasksOf(slow, id)).toHaveLength(1);
      expect(run?.deployment).toMatchObject({ taskArn: tasksOf(slow, id)[0]?.taskArn });
    } finally {
      await slow.close();
      useEcs(ecs);
    }
  });
});
