/**
 * `pnpm bench backend`: 2,000 runs through create, claim and four state changes (Submitted,
 * Running, a Running patch with outputs, Success) on each backend, in the same run: SQLite and
 * DynamoDB (DynamoDB Local, started by the benchmark; skipped with a note when Java is missing).
 *
 * Prints one JSON line per backend:
 * {"name","backend","runs","runs_per_s","requests_per_run","capacity_units_per_run"}
 * requests_per_run is counted (DynamoDB API calls; backend calls for SQLite), never timed. Goal:
 * at most 8 DynamoDB requests per run.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend } from "@tern/core/plugin";
import { SqliteBackend } from "@tern/core/runtime";
import { registerTestFlow } from "@tern/test-support/flow-versions";

const RUNS = 2_000;

/** Counts calls to the backend's methods (SQLite makes one statement batch per call). */
function counted(backend: Backend): { backend: Backend; calls: () => number } {
  let calls = 0;
  const proxy = new Proxy(backend, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { backend: proxy, calls: () => calls };
}

const setup = (backend: Backend) => registerTestFlow(backend, { project: "bench", flow: "f" });

async function drive(backend: Backend): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < RUNS; i++) {
    await backend.createRun({ project: "bench", flow: "f", parameters: { i } });
    const [run] = await backend.claimRuns({ agentId: "bench", labels: [], limit: 1, leaseMs: 60_000 });
    if (run === undefined) throw new Error("nothing to claim");
    let r = await backend.transitionRun({
      runId: run.id,
      expectedRevision: run.revision,
      to: "Submitted",
      reason: "bench",
      lease: null,
    });
    r = await backend.transitionRun({ runId: r.id, expectedRevision: r.revision, to: "Running", reason: "bench" });
    r = await backend.transitionRun({
      runId: r.id,
      expectedRevision: r.revision,
      to: "Running",
      outputs: { out: { kind: "json", value: i } },
    });
    await backend.transitionRun({ runId: r.id, expectedRevision: r.revision, to: "Success" });
  }
  return performance.now() - t0;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

export async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const dir = await mkdtemp(join(tmpdir(), "tern-bench-backend-"));
  try {
    const sqlite = counted(await SqliteBackend.open({ path: join(dir, "state.db") }));
    await setup(sqlite.backend);
    const setupCalls = sqlite.calls();
    const ms = await drive(sqlite.backend);
    console.log(
      JSON.stringify({
        name: "backend",
        backend: "sqlite",
        runs: RUNS,
        runs_per_s: round((RUNS * 1000) / ms),
        requests_per_run: round((sqlite.calls() - setupCalls) / RUNS),
        capacity_units_per_run: null,
      }),
    );
    await sqlite.backend.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  let dynamo: typeof import("@tern/backend-dynamodb");
  let local: typeof import("@tern/test-support/dynamodb-local");
  try {
    dynamo = await import("@tern/backend-dynamodb");
    local = await import("@tern/test-support/dynamodb-local");
  } catch (error) {
    console.log(JSON.stringify({ name: "backend", backend: "dynamodb", skipped: (error as Error).message }));
    return;
  }
  const server = await local.startDynamoDbLocal();
  try {
    const { DynamoDBClient } = await import("@aws-sdk/client-dynamodb");
    const client = new DynamoDBClient({
      region: local.LOCAL_REGION,
      endpoint: server.endpoint,
      credentials: local.LOCAL_CREDENTIALS,
    });
    await dynamo.createTernTable(client, "tern-bench");
    const backend = await dynamo.DynamoDbBackend.open({ table: "tern-bench", client });
    await setup(backend);
    const before = { ...backend.usage };
    const ms = await drive(backend);
    const usage = backend.usage;
    console.log(
      JSON.stringify({
        name: "backend",
        backend: "dynamodb-local",
        runs: RUNS,
        runs_per_s: round((RUNS * 1000) / ms),
        requests_per_run: round((usage.requests - before.requests) / RUNS),
        capacity_units_per_run: round((usage.capacityUnits - before.capacityUnits) / RUNS),
      }),
    );
    await backend.close();
  } finally {
    await server.stop();
  }
}
