/**
 * Runner leases, with leases of a few seconds (TERN_LEASE_SECONDS), on the embedded default and
 * on DynamoDB Local: a runner whose task blocks its event loop keeps its lease; a runner that lost
 * its lease (paused past it) does nothing more; a cancel stops a runner that cannot stop itself.
 * An observer agent (labels nobody's runs have, so it claims nothing) sweeps every half second
 * meanwhile.
 */
import type { ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createTernTable } from "@tern/backend-dynamodb";
import {
  type DynamoDbLocal,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  startDynamoDbLocal,
} from "@tern/test-support/dynamodb-local";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { spawnTern, stopTern, TERN_COMMAND, type TernHome, ternHome, waitForOutput } from "../support/cli.js";

interface RunJson {
  id: string;
  state: string;
  reason?: string;
  taskRuns: Array<{ slug: string; state: string; message?: string }>;
  history: Array<{ state: string; reason?: string }>;
}

let db: DynamoDbLocal | undefined;
let tables = 0;
let t: TernHome;
let marks: string;
/** The lease length, and the backend of the test (none: the embedded default). */
let env: Record<string, string>;
const children: ChildProcess[] = [];

afterAll(async () => {
  await db?.stop();
});

/** Starts a background `tern` in the test's home (under `wrapper`, for instance faketime). */
function background(
  args: readonly string[],
  more: Record<string, string> = {},
  wrapper: readonly string[] = [],
): ChildProcess {
  const child = spawnTern(args, { TERN_HOME: t.home, TERN_TEST_MARKS: marks, ...env, ...more }, wrapper);
  children.push(child);
  return child;
}

/** An agent that only sweeps: its labels match no run. */
async function observer(wrapper: readonly string[] = []): Promise<ChildProcess> {
  const child = background(["agent", "--labels", "observer-only", "--poll-interval-ms", "500"], {}, wrapper);
  await waitForOutput(child, /with labels observer-only/);
  return child;
}

const show = (id: string) => t.json<RunJson>(["runs", "show", id], env);
const read = () => readFile(marks, "utf8").catch(() => "");

/** `check`'s first defined value, looked for every 100 ms for up to `timeoutMs`. */
const until = <T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> =>
  vi.waitFor(
    async () => {
      const value = await check();
      if (value === undefined) throw new Error(`timed out waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: 100 },
  );

const runnerPid = async (): Promise<number> =>
  until(async () => {
    const pid = /spin started (\d+)/.exec(await read())?.[1];
    return pid === undefined ? undefined : Number(pid);
  }, "the task to start");

const ended = (id: string) =>
  until(async () => {
    const run = await show(id);
    return ["Success", "Failed", "Cancelled"].includes(run.state) ? run : undefined;
  }, `run ${id} to end`);

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.each(["sqlite", "dynamodb"])("runner leases on %s", { timeout: 120_000 }, (backend) => {
  // DynamoDB Local (a JVM) beside two runners and two agents can stall a request for a second or
  // more on this machine's two cores: its leases are longer, so a stall is not a death.
  const leaseSeconds = backend === "dynamodb" ? 4 : 2;
  const spin = (leases: number) => `seconds=${leases * leaseSeconds}`;
  beforeAll(async () => {
    if (backend === "dynamodb") db ??= await startDynamoDbLocal();
  }, 60_000);
  beforeEach(async () => {
    t = await ternHome();
    marks = join(t.home, "marks.log");
    env = { TERN_LEASE_SECONDS: String(leaseSeconds) };
    if (backend === "dynamodb" && db !== undefined) {
      const table = `tern-leases-${++tables}`;
      const client = new DynamoDBClient({
        region: LOCAL_REGION,
        endpoint: db.endpoint,
        credentials: LOCAL_CREDENTIALS,
      });
      await createTernTable(client, table);
      client.destroy();
      env = {
        ...env,
        TERN_BACKEND: `dynamodb://${table}?region=${LOCAL_REGION}&endpoint=${encodeURIComponent(db.endpoint)}`,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      };
    }
    expect((await t.tern(["register", "test/fixtures/lease-flows.ts"], env)).code).toBe(0);
  });
  afterEach(async () => {
    for (const child of children.splice(0)) await stopTern(child);
    await t.cleanup();
  });

  it("keeps the lease of a task that blocks its event loop for three lease lengths", async () => {
    await observer();
    const { id } = await t.json<{ id: string }>(["run", "spin", "--param", spin(3)], env);
    const agent = background(["agent", "--poll-interval-ms", "500"]);
    let out = "";
    agent.stderr?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    const run = await ended(id);
    expect(run.state, `${run.reason}\n${out}`).toBe("Success");
    expect(run.history.map((h) => h.state)).toEqual(["Scheduled", "Submitted", "Running", "Success"]);
    expect(await read()).toMatch(/spin done/);
    await stopTern(agent);
  });

  it("lets a paused runner that lost its lease finish nothing afterwards", async () => {
    await observer();
    const { id } = await t.json<{ id: string }>(["run", "spin", "--param", spin(4)], env);
    background(["agent", "--poll-interval-ms", "500"]);
    const pid = await runnerPid();
    process.kill(pid, "SIGSTOP");
    let failed: RunJson;
    try {
      failed = await ended(id);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    expect(failed.state).toBe("Failed");
    expect(failed.reason).toMatch(/stopped renewing its lease: no renewal for \d+ s .*died, or was paused/);
    await expect
      .poll(() => alive(pid), { timeout: 10_000, interval: 100, message: "the resumed runner to end" })
      .toBe(false);
    expect(await read()).not.toMatch(/spin done/);
    const after = await show(id);
    expect(after.state).toBe("Failed");
    expect(after.reason).toBe(failed.reason);
  });

  it("ends a cancelled run whose task blocks its runner: the run Cancelled, the process gone", async () => {
    const { id } = await t.json<{ id: string }>(["run", "spin", "--param", "seconds=60"], env);
    background(["agent", "--poll-interval-ms", "500"]);
    const pid = await runnerPid();
    expect((await t.tern(["cancel", id], env)).code).toBe(0);
    const run = await ended(id);
    expect(run.state).toBe("Cancelled");
    expect(run.reason).toMatch(new RegExp(`the flow did not stop within ${leaseSeconds} s of the cancel`));
    await expect
      .poll(() => alive(pid), { timeout: 10_000, interval: 100, message: "the runner to be killed" })
      .toBe(false);
    expect(await read()).not.toMatch(/spin done/);
  });

  it("leaves a healthy run alone when an observer's clock is 90 s ahead", async () => {
    await observer(["faketime", "-f", "+90s"]);
    const { id } = await t.json<{ id: string }>(["run", "spin", "--param", spin(2)], env);
    background(["agent", "--poll-interval-ms", "500"]);
    const run = await ended(id);
    expect(run.state, run.reason).toBe("Success");
  });

  it("claims due runs with a clock 10 minutes behind, and its runner's leases hold", async () => {
    await observer();
    const { id } = await t.json<{ id: string }>(["run", "spin", "--param", spin(2)], env);
    background(["agent", "--poll-interval-ms", "500"], {}, ["faketime", "-f", "-10m"]);
    const run = await ended(id);
    expect(run.state, run.reason).toBe("Success");
  });

  it("tells by its polls that an agent 10 minutes behind is running (tern why)", async () => {
    const { id } = await t.json<{ id: string }>(["run", "spin", "--param", spin(1), "--labels", "gpu"], env);
    const behind = background(["agent", "--labels", "cpu", "--poll-interval-ms", "500"], {}, [
      "faketime",
      "-f",
      "-10m",
    ]);
    await waitForOutput(behind, /with labels cpu/);
    const why = await t.json<{ findings: string[] }>(["why", id], env);
    expect(why.findings[0]).toMatch(/^No live agent's labels fit the run's labels gpu/);
    expect(why.findings.join("\n")).toMatch(/has labels cpu; the run needs labels gpu/);
  });

  it("records nothing over a run another runner took while its own runner was late", async () => {
    const { id } = await t.json<{ id: string }>(["run", "spin", "--param", spin(4)], env);
    // The agent's runner starts late, as if paused while the run was Submitted: only once another
    // runner has taken the run (the test says when, by creating the file `go`).
    const go = join(t.home, "go");
    const late = ["sh", "-c", 'while [ ! -e "$TERN_TEST_GO" ]; do sleep 0.1; done; exec "$0" "$@"', ...TERN_COMMAND];
    const agent = background(["agent", "--poll-interval-ms", "500"], {
      TERN_RUNNER_COMMAND: JSON.stringify(late),
      TERN_TEST_GO: go,
    });
    await expect.poll(async () => (await show(id)).state, { timeout: 30_000, interval: 100 }).toBe("Submitted");
    background(["execute", id]);
    // "Running", or the state with its reason: a run that ended instead says why.
    const stateOf = async () => {
      const run = await show(id);
      return run.state === "Running" ? run.state : `${run.state} ${run.reason ?? ""}`.trim();
    };
    const holds = waitForOutput(agent, /holds the run now/, 120_000);
    holds.catch(() => {}); // awaited below; not unhandled if the test fails first
    try {
      await expect.poll(stateOf, { timeout: 60_000, interval: 100 }).toBe("Running");
    } finally {
      // Released however the wait ended, so that the agent's runner, and the agent, can exit.
      await writeFile(go, "");
    }
    const run = await ended(id);
    expect(run.state, run.reason).toBe("Success");
    await holds;
    expect(run.history.map((h) => h.state)).toEqual(["Scheduled", "Submitted", "Running", "Success"]);
  });

  it("ends a run whose runner was killed, with the signal in words and its task runs ended", async () => {
    const { id } = await t.json<{ id: string }>(["run", "nap"], env);
    background(["agent", "--poll-interval-ms", "500"]);
    const pid = await until(async () => {
      const found = /nap started (\d+)/.exec(await read())?.[1];
      return found === undefined ? undefined : Number(found);
    }, "the task to start");
    // Its Running state reaches the backend within a flush (500 ms).
    await expect
      .poll(async () => (await show(id)).taskRuns[0]?.state, { timeout: 30_000, interval: 100 })
      .toBe("Running");
    process.kill(pid, "SIGKILL");
    const run = await ended(id);
    expect(run.state).toBe("Failed");
    // What the runner printed last (the agent reads its output in one stream) says where it was.
    expect(run.reason).toMatch(
      /^the runner was killed by SIGKILL \(out of memory, or killed by the system or a user\) without reporting a final state(; its last output: .*napping.*)?$/,
    );
    expect(run.taskRuns.map((r) => [r.slug, r.state, r.message])).toEqual([
      ["nap", "Failed", `the run ended: ${run.reason}`],
    ]);
  });

  it("ends a cancelled run whose runner is dead within a lease length, saying so", async () => {
    await observer();
    const { id } = await t.json<{ id: string }>(["run", "nap"], env);
    const agent = background(["agent", "--poll-interval-ms", "500"]);
    const pid = await until(async () => {
      const found = /nap started (\d+)/.exec(await read())?.[1];
      return found === undefined ? undefined : Number(found);
    }, "the task to start");
    // The agent goes first (it would record the death itself), then the runner, then the cancel.
    agent.kill("SIGKILL");
    process.kill(pid, "SIGKILL");
    expect((await t.tern(["cancel", id], env)).code).toBe(0);
    const cancelledAt = Date.now();
    const run = await ended(id);
    expect(run.state).toBe("Cancelled");
    expect(run.reason).toMatch(/^cancelled; its runner \(.+\) stopped renewing its lease/);
    expect(Date.now() - cancelledAt).toBeLessThan(leaseSeconds * 1000 * 4);
  });

  it("keeps at most TERN_LOG_LIMIT_BYTES of a run's output, with a note where the rest was dropped", async () => {
    const { id } = await t.json<{ id: string }>(["run", "chatty"], env);
    expect((await t.tern(["agent", "--once"], { ...env, TERN_LOG_LIMIT_BYTES: "20000" })).code).toBe(0);
    expect((await show(id)).state).toBe("Success");
    const logs = await t.json<Array<{ message: string; level: string }>>(["logs", id], env);
    expect(logs.length).toBeGreaterThan(100);
    expect(logs.length).toBeLessThan(300);
    expect(logs.at(-2)?.level).toBe("warn");
    expect(logs.some((l) => /the rest was dropped|dropped/.test(l.message))).toBe(true);
    expect(logs.some((l) => l.message.startsWith("line 1999 "))).toBe(false);
  });
});
