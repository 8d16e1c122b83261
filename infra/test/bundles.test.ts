/**
 * The Lambda bundles that `cdk synth` writes (cdk.out/asset.<hash>/index.mjs, copies of the
 * package's prebuilt assets/handlers/<name>) imported and invoked with real-shaped events against
 * DynamoDB Local, s3rver and the fake ECS: the bundle that ships is the one that works. The AWS
 * SDK the bundles leave to the Lambda runtime resolves from infra's node_modules, as it would
 * from the runtime's.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Backend, Flow } from "@tern/core";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DynamoDbLocal, startDynamoDbLocal } from "../../packages/backend-dynamodb/test/dynamodb-local.js";
import { type LocalServer, startS3rver } from "../../packages/storage-cloud/test/servers.js";
import { FakeEcs } from "../../test/support/fake-ecs.js";
import { openLocalTable, serverlessEnv, setEnv, taskStateEvent } from "../../test/support/serverless.js";
import { parseConfig } from "../lib/config.js";
import { TernStack } from "../lib/stack.js";

const here = dirname(fileURLToPath(import.meta.url));
const IMAGE = "ghcr.io/tern/runner:test";
const HMAC_KEY = "a-bundle-test-signing-key-of-32-chars-or-more";
const RULE = {
  name: "uploads",
  flow: "fargate-ingest",
  project: "bundles",
  pattern: { source: ["aws.s3"], "detail-type": ["Object Created"] },
  parameters: { key: "$.detail.object.key" },
};

type Handler = (event: unknown, context?: unknown) => Promise<Record<string, unknown>>;

let outdir: string;
let home: string;
let db: DynamoDbLocal;
let s3: LocalServer;
let ecs: FakeEcs;
let backend: Backend;
const handlers: Record<string, Handler> = {};
const environments: Record<string, Record<string, unknown>> = {};
let restoreEnv: () => void = () => {};

beforeAll(async () => {
  // Inside infra/, so the SDK the bundles leave out resolves from infra's node_modules.
  outdir = await mkdtemp(join(here, "..", ".test-out-"));
  home = await mkdtemp(join(tmpdir(), "tern-bundles-"));
  const app = new App({ outdir });
  const stack = new TernStack(app, "Tern", {
    config: parseConfig({ runnerImage: { uri: IMAGE }, triggers: [RULE], cloudEvents: { auth: "hmac" } }, "test"),
  });
  app.synth();
  const template = Template.fromStack(stack);
  for (const fn of Object.values(template.findResources("AWS::Lambda::Function"))) {
    const description = fn.Properties.Description as string | undefined;
    if (description?.startsWith("tern ") !== true) continue;
    const name = description.replace(/^tern | handler$/g, "");
    const key = JSON.stringify(fn.Properties.Code.S3Key);
    const hash = /([0-9a-f]{64})\.zip/.exec(key)?.[1];
    if (hash === undefined) throw new Error(`no asset for ${name}: ${key}`);
    environments[name] = fn.Properties.Environment.Variables;
    handlers[name] = (await import(pathToFileURL(join(outdir, `asset.${hash}`, "index.mjs")).href)).handler as Handler;
  }

  [db, s3, ecs] = await Promise.all([
    startDynamoDbLocal(),
    startS3rver(["tern-fargate"]),
    FakeEcs.start({ clusters: ["tern"], launch: "none", pullableImages: (image) => image === IMAGE }),
  ]);
  restoreEnv = setEnv({
    // What the stack sets, with the local servers in place of the deployed resources.
    ...serverlessEnv({
      home,
      table: "tern-bundles",
      dynamodbEndpoint: db.endpoint,
      s3Endpoint: s3.endpoint,
      ecsEndpoint: ecs.endpoint,
      image: IMAGE,
    }),
    TERN_AGENT_LABELS: "",
    TERN_TRIGGER_RULES: environments.trigger?.TERN_TRIGGER_RULES as string,
    TERN_CLOUDEVENTS_AUTH: "hmac",
    TERN_CLOUDEVENTS_SECRET: HMAC_KEY,
    POWERTOOLS_LOG_LEVEL: "ERROR",
  });
  backend = await openLocalTable(db.endpoint, "tern-bundles");
  const flows = (await import("../../test/fixtures/fargate-flows.js")) as Record<string, Flow>;
  for (const name of ["etl", "ingest"]) await flows[name]?.register("bundles", { backend });
}, 120_000);

afterAll(async () => {
  await backend?.close();
  await Promise.all([db?.stop(), s3?.stop(), ecs?.close()]);
  restoreEnv();
  await rm(outdir, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

describe("the Lambda bundles cdk synth writes", { timeout: 60_000 }, () => {
  it("are the four handlers, configured by the stack as the handlers expect", () => {
    expect(Object.keys(handlers).sort()).toEqual(["agent", "cloudevents", "task-state", "trigger"]);
    expect(JSON.parse(environments.trigger?.TERN_TRIGGER_RULES as string)).toEqual([RULE]);
  });

  it("trigger: an S3 event starts a run and launches its task at once", async () => {
    const event = {
      version: "0",
      id: randomUUID(),
      "detail-type": "Object Created",
      source: "aws.s3",
      account: "123456789012",
      time: new Date().toISOString(),
      region: "us-east-1",
      resources: ["arn:aws:s3:::uploads"],
      detail: { bucket: { name: "uploads" }, object: { key: "in/1.csv", size: 1 } },
    };
    const result = await handlers.trigger?.(event);
    const runs = (result?.runs ?? []) as Array<{ runId: string; dispatch: string }>;
    const runId = runs[0]?.runId as string;
    expect(result).toMatchObject({ status: "started", runs: [{ dispatch: "submitted" }] });
    expect(await backend.getRun(runId)).toMatchObject({ state: "Submitted", parameters: { key: "in/1.csv" } });
  });

  it("agent: a scheduled invocation launches a ready run", async () => {
    const { run } = await backend.createRun({ project: "bundles", flow: "fargate-etl" });
    const result = await handlers.agent?.(
      { "detail-type": "Scheduled Event", source: "aws.events" },
      { getRemainingTimeInMillis: () => 60_000 },
    );
    expect(result).toMatchObject({ submitted: 1, failed: 0 });
    expect((await backend.getRun(run.id))?.deployment?.taskArn).toEqual(expect.stringContaining(":task/"));
  });

  it("task-state: a stopped task's event fails its run", async () => {
    const { run } = await backend.createRun({ project: "bundles", flow: "fargate-etl" });
    await handlers.agent?.({}, { getRemainingTimeInMillis: () => 60_000 });
    const taskArn = (await backend.getRun(run.id))?.deployment?.taskArn as string;
    await ecs.waitForTask(taskArn, "RUNNING");
    ecs.finishTask(taskArn, 1);
    const stopped = await ecs.waitForTask(taskArn, "STOPPED");
    const result = await handlers["task-state"]?.(taskStateEvent(stopped, taskArn));
    expect(result).toMatchObject({ status: "updated", to: "Failed" });
    expect((await backend.getRun(run.id))?.reason).toMatch(/exited with code 1 before reporting/);
  });

  it("cloudevents: a signed CloudEvent no rule matches gets 404; a bad signature gets 401", async () => {
    const { signRequest } = await import("@tern/lambda");
    const body = JSON.stringify({ specversion: "1.0", id: randomUUID(), source: "/x", type: "t", data: {} });
    const headers = { "content-type": "application/cloudevents+json" };
    const request = (signature: string) => ({
      headers: { ...headers, "x-tern-signature": signature },
      body,
      isBase64Encoded: false,
      requestContext: {},
    });
    // The rule matches S3 events only: a well-signed event of another kind is 404, not 202.
    expect(await handlers.cloudevents?.(request(signRequest(HMAC_KEY, headers, body)))).toMatchObject({
      statusCode: 404,
    });
    expect(await handlers.cloudevents?.(request(signRequest("x".repeat(40), headers, body)))).toMatchObject({
      statusCode: 401,
    });
  });
});
