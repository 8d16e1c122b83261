/**
 * `pnpm bench lambda`: the Lambda handlers' three figures, each beside its baseline.
 *
 * 1. `event_to_run_task`: time from the EventBridge trigger handler's start to its `RunTask`
 *    reaching ECS (the fake of @tern/test-support/fake-ecs, which stamps each request), p50 and p99
 *    over 200 events, warm, against DynamoDB Local and s3rver. Goal: p99 at most 100 ms. Beside
 *    it, the DynamoDB requests each event makes (the flow version and manifest are read once, by
 *    scheduleRun, and passed to the dispatch; a warm container keeps verified manifests), and the
 *    wait a polling agent adds before any launch: up to 10 s for Prefect 1's agent, up to 60 s
 *    for a one-minute schedule.
 * 2. `bundle_kb`: each handler bundled and minified as the stack ships it (the AWS SDK left to
 *    the Lambda runtime, which provides it), and for reference with the SDK inlined. Goal: at
 *    most 750 KB.
 * 3. `cold_import_ms`: importing each bundle in a fresh Node process, median of 5, beside an
 *    empty handler's bundle.
 *
 * Prints one JSON line per figure.
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startDynamoDbLocalOrSkip } from "./support/dynamodb-local.js";

const EVENTS = 200;
const HANDLERS = ["agent", "task-state", "trigger", "cloudevents"] as const;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const round = (n: number) => Math.round(n * 100) / 100;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function bundle(entry: string, sdkExternal: boolean): Promise<Uint8Array> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    platform: "node",
    format: "esm",
    target: "node22",
    conditions: ["@tern/source"],
    external: ["better-sqlite3", "esbuild", ...(sdkExternal ? ["@aws-sdk/*", "@smithy/*"] : [])],
    banner: {
      js: "import { createRequire as __ternRequire } from 'node:module'; const require = __ternRequire(import.meta.url);",
    },
    write: false,
    logLevel: "error",
  });
  return result.outputFiles[0]?.contents ?? new Uint8Array();
}

async function sizesAndColdStarts(): Promise<void> {
  // Under packages/lambda, so the SDK left out of the bundles resolves from its node_modules.
  const dir = join(root, "packages", "lambda", ".bundles");
  await mkdir(dir, { recursive: true });
  const sizes: Record<string, number> = {};
  const withSdk: Record<string, number> = {};
  for (const name of HANDLERS) {
    const entry = join(root, "packages", "lambda", "src", "handlers", `${name}.ts`);
    const bytes = await bundle(entry, true);
    await writeFile(join(dir, `${name}.mjs`), bytes);
    sizes[name] = round(bytes.byteLength / 1024);
    withSdk[name] = round((await bundle(entry, false)).byteLength / 1024);
  }
  await writeFile(join(dir, "empty.mjs"), "export const handler = async () => ({});\n");
  console.log(
    JSON.stringify({
      name: "lambda",
      figure: "bundle_kb",
      goal_kb: 750,
      bundle_kb: sizes,
      goal_met: Object.values(sizes).every((kb) => kb <= 750),
      with_sdk_inlined_kb: withSdk,
    }),
  );
  const importMs = (file: string): number => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const child = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const t = performance.now(); await import(${JSON.stringify(file)}); console.log(performance.now() - t);`,
        ],
        { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } },
      );
      if (child.status !== 0) throw new Error(`importing ${file} failed: ${child.stderr}`);
      times.push(Number(child.stdout.trim()));
    }
    times.sort((a, b) => a - b);
    return round(times[2] as number);
  };
  const cold: Record<string, number> = {};
  for (const name of HANDLERS) cold[name] = importMs(join(dir, `${name}.mjs`));
  console.log(
    JSON.stringify({
      name: "lambda",
      figure: "cold_import_ms",
      cold_import_ms: cold,
      empty_handler_ms: importMs(join(dir, "empty.mjs")),
    }),
  );
}

async function eventToRunTask(): Promise<void> {
  const db = await startDynamoDbLocalOrSkip({ name: "lambda", figure: "event_to_run_task" });
  if (db === undefined) return;
  const { startS3rver } = await import("@tern/test-support/servers");
  const { FakeEcs } = await import("@tern/test-support/fake-ecs");
  const s3 = await startS3rver(["tern-fargate"]);
  const ecs = await FakeEcs.start({ clusters: ["tern"], launch: "none", startDelayMs: 0 });
  const home = await mkdtemp(join(tmpdir(), "tern-bench-lambda-"));
  try {
    const { serverlessEnv, setEnv, openLocalTable, objectCreatedEvent } = await import("@tern/test-support/serverless");
    setEnv({
      ...serverlessEnv({
        home,
        table: "tern-bench",
        dynamodbEndpoint: db.endpoint,
        s3Endpoint: s3.endpoint,
        ecsEndpoint: ecs.endpoint,
        image: "ghcr.io/tern/runner:bench",
      }),
      TERN_TRIGGER_RULES: JSON.stringify([
        {
          flow: "fargate-ingest",
          project: "bench",
          pattern: { source: ["aws.s3"], "detail-type": ["Object Created"] },
          parameters: { key: "$.detail.object.key" },
        },
      ]),
    });
    const backend = await openLocalTable(db.endpoint, "tern-bench");
    const { ingest } = (await import("@tern/test-support/fargate-flows")) as { ingest: import("@tern/core").Flow };
    await ingest.register("bench", { backend });
    await backend.close();
    const { handler } = await import("@tern/lambda/handlers/trigger");
    const { logger } = await import("@tern/lambda/runtime");
    logger.setLogLevel("ERROR");
    const event = (key: string) => objectCreatedEvent("uploads", key);
    // Warm: the first invocation opens the backend and reads the rules (the cold start).
    await handler(event("warm-up"));
    const { runtime } = await import("@tern/lambda/runtime");
    const rt = await runtime("trigger", { ecs: true, rules: true });
    const requestsBefore = (rt.backend as unknown as { usage: { requests: number } }).usage.requests;
    const latencies: number[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const started = Date.now();
      const result = await handler(event(`incoming/${i}.csv`));
      const run = result.runs[0];
      if (run?.dispatch !== "submitted") throw new Error(`event ${i} was not dispatched: ${JSON.stringify(result)}`);
      const call = ecs.callLog.find(
        (c) =>
          c.operation === "RunTask" &&
          (c.input as { clientToken?: string }).clientToken?.startsWith(`tern-${run.runId}-`),
      );
      if (call === undefined) throw new Error(`no RunTask for run ${run.runId}`);
      latencies.push(call.atMs - started);
    }
    const requests = (rt.backend as unknown as { usage: { requests: number } }).usage.requests - requestsBefore;
    latencies.sort((a, b) => a - b);
    const p99 = percentile(latencies, 99);
    console.log(
      JSON.stringify({
        name: "lambda",
        figure: "event_to_run_task",
        events: EVENTS,
        p50_ms: percentile(latencies, 50),
        p99_ms: p99,
        max_ms: latencies.at(-1),
        goal_p99_ms: 100,
        goal_met: p99 <= 100,
        dynamodb_requests_per_event: round(requests / EVENTS),
        baseline_polling_wait_ms: { prefect1_agent_max: 10_000, one_minute_schedule_max: 60_000 },
      }),
    );
    const { resetRuntimes } = await import("@tern/lambda/runtime");
    await resetRuntimes();
  } finally {
    await Promise.all([ecs.close(), s3.stop(), db.stop()]);
    await rm(home, { recursive: true, force: true });
  }
}

/** `pnpm bench lambda` prints the three figures; `pnpm bench lambda latency` only event -> RunTask. */
export async function main(args: readonly string[] = []): Promise<void> {
  if (args[0] !== "latency") await sizesAndColdStarts();
  await eventToRunTask();
}
