/**
 * The Lambda bundles that `cdk synth` writes (cdk.out/asset.<hash>/index.mjs, copies of the
 * package's prebuilt assets/handlers/<name>) imported and invoked with real-shaped events against
 * DynamoDB Local, s3rver and the fake ECS: the bundle that ships is the one that works. The AWS
 * SDK the bundles leave to the Lambda runtime resolves from infra's node_modules, as it would
 * from the runtime's.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Flow } from "@tern/core";
import type { Backend } from "@tern/core/plugin";
import { type DynamoDbLocal, startDynamoDbLocal } from "@tern/test-support/dynamodb-local";
import { FakeEcs } from "@tern/test-support/fake-ecs";
import { startGitServer } from "@tern/test-support/git-server";
import { startRegistry } from "@tern/test-support/registry";
import { pushBaseImage } from "@tern/test-support/registry-images";
import {
  objectCreatedEvent,
  openLocalTable,
  serverlessEnv,
  setEnv,
  taskStateEvent,
} from "@tern/test-support/serverless";
import { type LocalServer, S3RVER_CREDENTIALS, startS3rver } from "@tern/test-support/servers";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
let bundleKey: string;

beforeAll(async () => {
  // Inside infra/, so the SDK the bundles leave out resolves from infra's node_modules.
  outdir = await mkdtemp(join(here, "..", ".test-out-"));
  home = await mkdtemp(join(tmpdir(), "tern-bundles-"));
  const app = new App({ outdir });
  const stack = new TernStack(app, "Tern", {
    // runner "bundle": the functions presign the runner bundle for each task, as with the stock image.
    config: parseConfig(
      { runnerImage: { uri: IMAGE }, runner: "bundle", triggers: [RULE], cloudEvents: { auth: "hmac" } },
      "test",
    ),
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
  // The runner bundle synth staged (what cdk deploy uploads), put in s3rver where the stack says.
  // The stack's s3:// URL names the CDK assets bucket (a token here); the key is the asset's file.
  const key = /\/([0-9a-f]{64}\.mjs)"/.exec(JSON.stringify(environments.agent?.TERN_RUNNER_BUNDLE ?? ""));
  if (key === null) throw new Error(`no runner bundle: ${JSON.stringify(environments.agent)}`);
  bundleKey = key[1] as string;
  const staged = await readFile(join(outdir, `asset.${bundleKey}`));
  const { S3Client, PutObjectCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    region: "us-east-1",
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
  });
  await client.send(new PutObjectCommand({ Bucket: "tern-fargate", Key: bundleKey, Body: staged }));
  client.destroy();
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
    TERN_RUNNER_BUNDLE: `s3://tern-fargate/${bundleKey}`,
    TERN_RUNNER_BUNDLE_SHA256: environments.agent?.TERN_RUNNER_BUNDLE_SHA256 as string,
    // The presigning S3 client (new S3Client({ region })) finds s3rver through the SDK's own variable.
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    TERN_TRIGGER_RULES: environments.trigger?.TERN_TRIGGER_RULES as string,
    TERN_CLOUDEVENTS_AUTH: "hmac",
    TERN_CLOUDEVENTS_SECRET: HMAC_KEY,
    POWERTOOLS_LOG_LEVEL: "ERROR",
  });
  backend = await openLocalTable(db.endpoint, "tern-bundles");
  const flows = (await import("@tern/test-support/fargate-flows")) as Record<string, Flow>;
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
    const result = await handlers.trigger?.(objectCreatedEvent("uploads", "in/1.csv"));
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
    const taskArn = (await backend.getRun(run.id))?.deployment?.taskArn as string;
    expect(taskArn).toEqual(expect.stringContaining(":task/"));
    // The task gets a presigned GET of the runner bundle (the presigner is bundled; the S3 client is
    // the runtime's): it downloads exactly the file whose sha256 the stack computed.
    const runTask = ecs.callLog.filter((call) => call.operation === "RunTask").at(-1)?.input as {
      overrides?: { containerOverrides?: Array<{ environment?: Array<{ name: string; value: string }> }> };
    };
    const url = runTask.overrides?.containerOverrides?.[0]?.environment?.find(
      (e) => e.name === "TERN_RUNNER_URL",
    )?.value;
    expect(url).toMatch(new RegExp(`^${s3.endpoint}/tern-fargate/${bundleKey}\\?.*X-Amz-Signature=`));
    const body = Buffer.from(await (await fetch(url as string)).arrayBuffer());
    expect(createHash("sha256").update(body).digest("hex")).toBe(environments.agent?.TERN_RUNNER_BUNDLE_SHA256);
  });

  it("agent: a scheduled invocation creates the runs of a flow's schedule (croner is in the bundle)", async () => {
    const { everyMinute } = (await import("@tern/test-support/fargate-flows")) as { everyMinute: Flow };
    await everyMinute.register("bundles", { backend });
    try {
      const result = await handlers.agent?.({}, { getRemainingTimeInMillis: () => 60_000 });
      const runs = await backend.listRuns({ project: "bundles", flow: "fargate-every-minute", limit: 100 });
      // Three minutes ahead: the Lambda polls every minute. Labelled "scheduled", which this agent
      // is not, so it leaves them for an agent that is.
      expect(runs.length).toBeGreaterThanOrEqual(3);
      expect(result).toMatchObject({ scheduled: runs.length, failed: 0 });
      for (const run of runs) {
        expect(run).toMatchObject({ state: "Scheduled", labels: ["scheduled"] });
        expect(run.scheduledAtMs % 60_000).toBe(0);
        expect(run.idempotencyKey).toBe(
          `schedule:fargate-every-minute:v1:every 1m:${new Date(run.scheduledAtMs).toISOString()}`,
        );
      }
    } finally {
      await backend.setSchedulesPaused("bundles", "fargate-every-minute", true);
    }
  });

  it("agent: launches a run of a flow kept in a Git repository (GitStorage is in the bundle, its cache in TERN_HOME)", async () => {
    const git = await startGitServer();
    try {
      process.env.TERN_TEST_GIT_URL = await git.createRepository("agent-flows");
      const { fargateGit } = (await import("@tern/test-support/fargate-git-flow")) as { fargateGit: Flow };
      await fargateGit.register("bundles", { backend });
      const { run } = await backend.createRun({ project: "bundles", flow: "fargate-git" });
      // The registration's copy of the branch is gone: the agent fetches its own.
      await rm(join(home, "cache", "git"), { recursive: true, force: true });
      const result = await handlers.agent?.({}, { getRemainingTimeInMillis: () => 60_000 });
      expect(result).toMatchObject({ failed: 0 });
      // The agent read the version's manifest from the branch to launch its task.
      expect(await backend.getRun(run.id)).toMatchObject({ state: "Submitted", deployment: { kind: "ecs-task" } });
      expect(await readdir(join(home, "cache", "git"))).toHaveLength(1);
    } finally {
      await git.stop();
    }
  });

  it("agent: launches a run of a flow kept in a container image in that image, by digest (DockerStorage is in the bundle)", async () => {
    const registry = await startRegistry();
    try {
      process.env.TERN_TEST_REGISTRY = new URL(registry.endpoint).host;
      process.env.TERN_TEST_BASE_IMAGE = (await pushBaseImage(registry.endpoint, "base/node", { tag: "22" })).reference;
      const { fargateDocker } = (await import("@tern/test-support/fargate-docker-flow")) as { fargateDocker: Flow };
      const { location } = await fargateDocker.register("bundles", { backend });
      const { run } = await backend.createRun({ project: "bundles", flow: "fargate-docker" });
      const result = await handlers.agent?.({}, { getRemainingTimeInMillis: () => 60_000 });
      expect(result).toMatchObject({ failed: 0 });
      // The agent read the version's manifest from the image's flow layer, and runs the image.
      expect(await backend.getRun(run.id)).toMatchObject({ state: "Submitted", deployment: { kind: "ecs-task" } });
      expect(ecs.taskDefinitions("tern-fargate-docker")[0]?.containerDefinitions?.[0]?.image).toBe(location);
    } finally {
      await registry.stop();
    }
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
