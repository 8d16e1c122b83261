/**
 * `pnpm bench schedules`: the schedule work of an agent's poll (`createScheduledRuns`, with the
 * windows of the Lambda's one-minute polls) on one backend holding 1,000 scheduled flows, 10 of
 * them due every minute and the rest not for months; beside it, in the same run, the same polls
 * on a backend holding only the 10 due flows (the baseline). On SQLite and on DynamoDB Local.
 *
 * Two polls each: the first creates three minutes of runs ahead (30 ticks), the second, a minute
 * later, the one new tick of each due flow (10 ticks), as every later poll does. Prints one line
 * per backend and poll:
 * {"name":"schedules","backend","poll","flows","due_ticks","poll_ms","baseline_ms","requests",
 *  "baseline_requests","writes","writes_per_due_tick","goal_met"}
 * `requests` are DynamoDB API calls (SQLite: backend calls), counted, not timed. Goal: as many
 * requests as the baseline (they do not grow with the flows not due), at most one write per due
 * tick.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend, FlowVersionInput } from "@tern/core/plugin";
import { createScheduledRuns, SqliteBackend, scheduleWindows } from "@tern/core/runtime";
import { registerTestFlow } from "@tern/test-support/flow-versions";
import { startDynamoDbLocalOrSkip } from "./support/dynamodb-local.js";

const FLOWS = 1_000;
const DUE = 10;
const LAMBDA_POLL_MS = 60_000;
/** Methods of the backend that write (SQLite counts backend calls). */
const WRITES = new Set(["advanceSchedule", "createRun", "registerFlowVersion", "transitionRun"]);

type Counter = () => { requests: number; writes: number };

/** Counts calls to the backend's methods, and those that write. */
function counted(backend: Backend): { backend: Backend; usage: Counter } {
  const usage = { requests: 0, writes: 0 };
  const proxy = new Proxy(backend, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        usage.requests += 1;
        if (WRITES.has(String(property))) usage.writes += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { backend: proxy, usage: () => ({ ...usage }) };
}

/** Flow `i`: the first `DUE` every minute, the rest every 366 days from 100 days on. */
function flow(i: number): Partial<FlowVersionInput> {
  const far = new Date(Date.now() + 100 * 86_400_000).toISOString();
  return {
    project: "bench",
    flow: `f${String(i).padStart(4, "0")}`,
    schedules: [
      i < DUE
        ? { name: "minutely", catchUp: "latest", every: "1m", everyMs: 60_000, anchor: "1970-01-01T00:00:00.000Z" }
        : { name: "yearly", catchUp: "latest", every: "366d", everyMs: 366 * 86_400_000, anchor: far },
    ],
  };
}

/** Registers flows `from` to `to - 1`, a few at a time (DynamoDB Local takes one in a few ms). */
async function registerFlows(backend: Backend, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, to - i) }, (_, j) => registerTestFlow(backend, flow(i + j))));
  }
}

/**
 * A schedule's cursor starts at its registration, so the first poll's ticks depend on it: the
 * due flows of both backends are registered together, never across a minute's boundary, so
 * both first polls find the same ticks.
 */
async function registerDueFlows(backends: readonly Backend[]): Promise<void> {
  const msToMinute = 60_000 - (Date.now() % 60_000);
  if (msToMinute < 5_000) await new Promise((resolve) => setTimeout(resolve, msToMinute + 100));
  await Promise.all(backends.map((backend) => registerFlows(backend, 0, DUE)));
}

interface Poll {
  readonly ms: number;
  readonly created: number;
  readonly requests: number;
  readonly writes: number;
}

/** The two polls, at `startMs` and a minute later. */
async function polls(backend: Backend, usage: Counter, startMs: number): Promise<Poll[]> {
  const result: Poll[] = [];
  for (const nowMs of [startMs, startMs + 60_000]) {
    const before = usage();
    const t0 = performance.now();
    const { created } = await createScheduledRuns(backend, { nowMs, ...scheduleWindows(LAMBDA_POLL_MS) });
    const ms = performance.now() - t0;
    const after = usage();
    result.push({
      ms,
      created: created.length,
      requests: after.requests - before.requests,
      writes: after.writes - before.writes,
    });
  }
  return result;
}

const round = (x: number) => Math.round(x * 100) / 100;

function print(backend: string, measured: readonly Poll[], baseline: readonly Poll[]): void {
  measured.forEach((poll, i) => {
    const base = baseline[i] as Poll;
    const perTick = poll.created === 0 ? null : round(poll.writes / poll.created);
    console.log(
      JSON.stringify({
        name: "schedules",
        backend,
        poll: i === 0 ? "first" : "next",
        flows: FLOWS,
        due_flows: DUE,
        due_ticks: poll.created,
        poll_ms: round(poll.ms),
        baseline_ms: round(base.ms),
        requests: poll.requests,
        baseline_requests: base.requests,
        writes: poll.writes,
        writes_per_due_tick: perTick,
        goal_met: poll.requests <= base.requests && perTick !== null && perTick <= 1 && poll.created === base.created,
      }),
    );
  });
}

/** Both backends of a case from `open`, filled, then polled from the same instant. */
async function measure(name: string, open: (label: string) => Promise<{ backend: Backend; usage: Counter }>) {
  const many = await open("many");
  const few = await open("few");
  try {
    await registerFlows(many.backend, DUE, FLOWS);
    await registerDueFlows([many.backend, few.backend]);
    const startMs = Date.now() + 1_000;
    // The baseline first and then the case, each poll on a backend of its own.
    const baseline = await polls(few.backend, few.usage, startMs);
    const measured = await polls(many.backend, many.usage, startMs);
    print(name, measured, baseline);
  } finally {
    await many.backend.close();
    await few.backend.close();
  }
}

export async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "tern-bench-schedules-"));
  try {
    await measure("sqlite", async (label) => counted(await SqliteBackend.open({ path: join(dir, `${label}.db`) })));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const server = await startDynamoDbLocalOrSkip({ name: "schedules", backend: "dynamodb-local" });
  if (server === undefined) return;
  try {
    const [{ DynamoDBClient }, dynamo, local] = await Promise.all([
      import("@aws-sdk/client-dynamodb"),
      import("@tern/backend-dynamodb"),
      import("@tern/test-support/dynamodb-local"),
    ]);
    const client = new DynamoDBClient({
      region: local.LOCAL_REGION,
      endpoint: server.endpoint,
      credentials: local.LOCAL_CREDENTIALS,
    });
    try {
      await measure("dynamodb-local", async (label) => {
        await dynamo.createTernTable(client, `tern-schedules-${label}`);
        const backend = await dynamo.DynamoDbBackend.open({ table: `tern-schedules-${label}`, client });
        return { backend, usage: () => ({ requests: backend.usage.requests, writes: backend.usage.writes }) };
      });
    } finally {
      client.destroy();
    }
  } finally {
    await server.stop();
  }
}
