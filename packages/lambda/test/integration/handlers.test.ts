/**
 * The Lambda handlers called with real-shaped events, against DynamoDB Local (state), s3rver
 * (flows) and the fake ECS of @tern/test-support/fake-ecs (reached through AWS_ENDPOINT_URL_ECS, as
 * the default ECS client would in Lambda).
 */
import { randomUUID } from "node:crypto";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Flow } from "@tern/core";
import type { Backend, RunRecord } from "@tern/core/plugin";
import type { FakeEcs } from "@tern/test-support/fake-ecs";
import { type S3FaultProxy, startS3FaultProxy } from "@tern/test-support/fault-proxy";
import { objectCreatedEvent, scheduledEvent, setEnv, taskStateEvent } from "@tern/test-support/serverless";
import type { SQSEvent } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import "aws-sdk-client-mock-vitest/extend";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { ConfigError } from "../../src/config.js";
import { handler as agentHandler } from "../../src/handlers/agent.js";
import { handler as cloudEventsHandler } from "../../src/handlers/cloudevents.js";
import { handler as taskStateHandler } from "../../src/handlers/task-state.js";
import { handler as triggerHandler } from "../../src/handlers/trigger.js";
import { resetRuntimes } from "../../src/runtime.js";
import { SIGNATURE_HEADER, signRequest, signRequestV1 } from "../../src/signature.js";
import { type HandlerWorld, startHandlerWorld, withEnv } from "./handler-setup.js";

const PROJECT = "lambda";
const HMAC_KEY = "a-test-signing-key-of-32-characters-or-more";
const RULES = [
  {
    name: "uploads",
    flow: "fargate-ingest",
    project: PROJECT,
    pattern: { source: ["aws.s3"], "detail-type": ["Object Created"], detail: { bucket: { name: ["uploads"] } } },
    parameters: { key: "$.detail.object.key" },
  },
  {
    name: "orders",
    flow: "fargate-ingest",
    project: PROJECT,
    pattern: { type: ["com.acme.order.created"], source: [{ prefix: "/orders" }] },
    parameters: { key: "$.data.orderId" },
  },
];

let world: HandlerWorld | undefined;
/** In front of s3rver: the flows are stored through it, so S3 can be made to answer 503. */
let s3Proxy: S3FaultProxy;
let ecs: FakeEcs;
let backend: Backend;

const runsOf = async (flow: string): Promise<RunRecord[]> => backend.listRuns({ project: PROJECT, flow, limit: 1000 });
const tasksOf = (runId: string) => ecs.launchedTasks.filter((t) => t.environment?.TERN_RUN_ID === runId);
const context = (remainingMs: number) => {
  const end = Date.now() + remainingMs;
  return { getRemainingTimeInMillis: () => end - Date.now() };
};

/** An S3 "Object Created" event for `key` in bucket "uploads", as EventBridge delivers it. */
const objectCreated = (key: string, id?: string) => objectCreatedEvent("uploads", key, id);

/** A function URL request (payload 2.0) with `body`. */
function httpRequest(body: string, headers: Record<string, string>, iam = false) {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: "/",
    rawQueryString: "",
    headers: { host: "abc.lambda-url.us-east-1.on.aws", ...headers },
    body: Buffer.from(body).toString("base64"),
    isBase64Encoded: true,
    requestContext: {
      http: { method: "POST", path: "/", protocol: "HTTP/1.1", sourceIp: "1.2.3.4", userAgent: "test" },
      ...(iam ? { authorizer: { iam: { accessKey: "AKIA...", userArn: "arn:aws:iam::123456789012:user/ci" } } } : {}),
    },
  };
}

const structured = (id: string, type = "com.acme.order.created", extra: Record<string, unknown> = {}) =>
  JSON.stringify({ specversion: "1.0", id, source: "/orders/eu", type, data: { orderId: `order-${id}` }, ...extra });

/** Headers for a structured-mode request, signed with `key`. */
const signed = (body: string, at?: number, key = HMAC_KEY) => {
  const headers = { "content-type": "application/cloudevents+json" };
  return { ...headers, [SIGNATURE_HEADER]: signRequest(key, headers, body, at) };
};

beforeAll(async () => {
  world = await startHandlerWorld({
    name: "lambda",
    bucket: "tern-fargate",
    env: {
      TERN_TRIGGER_RULES: JSON.stringify(RULES),
      TERN_CLOUDEVENTS_AUTH: "hmac",
      TERN_CLOUDEVENTS_SECRET: HMAC_KEY,
    },
    s3Front: async (s3) => {
      s3Proxy = await startS3FaultProxy(s3.endpoint);
      return s3Proxy;
    },
  });
  [ecs] = world.ecs as [FakeEcs];
  ({ backend } = world);
  const flows = (await import("@tern/test-support/fargate-flows")) as Record<string, Flow>;
  for (const name of ["etl", "brokenImage", "ingest"]) await flows[name]?.register(PROJECT, { backend });
}, 90_000);

afterAll(() => world?.close());

describe("the scheduled agent", { timeout: 60_000 }, () => {
  beforeEach(async () => {
    await resetRuntimes();
  });

  it("claims and launches ready runs in one invocation", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await backend.createRun({ project: PROJECT, flow: "fargate-etl" })).run.id);
    const scheduled = scheduledEvent();
    const result = await agentHandler(scheduled, context(60_000));
    expect(result).toMatchObject({ claimed: 3, submitted: 3, failed: 0, outOfTime: false });
    for (const id of ids) {
      const run = await backend.getRun(id);
      expect(run?.state).toBe("Submitted");
      expect(tasksOf(id)).toHaveLength(1);
    }
  });

  it("given 500 ready runs and little time, returns in time and leaves the rest claimed by nobody", async () => {
    const restore = setEnv({ TERN_SAFETY_MARGIN_MS: "2000" });
    try {
      const created: string[] = [];
      for (let i = 0; i < 500; i += 25) {
        const batch = await Promise.all(
          Array.from({ length: 25 }, () => backend.createRun({ project: PROJECT, flow: "fargate-etl" })),
        );
        created.push(...batch.map((b) => b.run.id));
      }
      const remainingMs = 4_000;
      const started = Date.now();
      const result = await agentHandler({}, context(remainingMs));
      // The deadline is the behaviour under test: Lambda would freeze the agent past it.
      expect(Date.now() - started).toBeLessThan(remainingMs);
      expect(result.outOfTime).toBe(true);
      expect(result.claimed).toBeGreaterThan(0);
      expect(result.claimed).toBeLessThan(500);
      expect(result.submitted).toBe(result.claimed);
      const runs = await Promise.all(created.map((id) => backend.getRun(id) as Promise<RunRecord>));
      const submitted = runs.filter((r) => r.state === "Submitted");
      const waiting = runs.filter((r) => r.state === "Scheduled");
      expect(submitted).toHaveLength(result.submitted);
      expect(waiting).toHaveLength(500 - result.submitted);
      expect(waiting.every((r) => r.lease === undefined && r.attempts === 0)).toBe(true);
    } finally {
      restore();
      // Leave nothing for the other tests' agents.
      for (const run of await backend.listRuns({
        project: PROJECT,
        flow: "fargate-etl",
        state: "Scheduled",
        limit: 1000,
      })) {
        await backend.transitionRun({
          runId: run.id,
          expectedRevision: run.revision,
          to: "Cancelled",
          reason: "test cleanup",
        });
      }
    }
  });
});

describe("the scheduled agent and flows' schedules", { timeout: 60_000 }, () => {
  const FLOW = "fargate-every-minute";
  beforeEach(async () => {
    await resetRuntimes();
  });

  /** Every run of the flow, by tick, after checking that no tick has two and none two tasks. */
  const runsByTick = async (): Promise<Map<number, RunRecord>> => {
    const runs = await runsOf(FLOW);
    const byTick = new Map(runs.map((run) => [run.scheduledAtMs, run]));
    expect(byTick.size).toBe(runs.length);
    for (const run of runs) expect(tasksOf(run.id).length).toBeLessThanOrEqual(1);
    return byTick;
  };

  it("creates the runs of the ticks coming due once, and launches those whose tick has come", async () => {
    const flows = (await import("@tern/test-support/fargate-flows")) as Record<string, Flow>;
    await flows.everyMinute?.register(PROJECT, { backend });
    onTestFinished(async () => {
      // Leave nothing for the other tests' agents.
      await backend.setSchedulesPaused(PROJECT, FLOW, true);
      for (const run of await runsOf(FLOW)) {
        if (run.state !== "Scheduled") continue;
        await backend.transitionRun({
          runId: run.id,
          expectedRevision: run.revision,
          to: "Cancelled",
          reason: "test cleanup",
        });
      }
    });
    // As if the last tick's invocation came 90 s ago: the ticks since are on time (within two
    // one-minute polls), whatever the catch-up policy.
    const [state] = (await backend.listSchedules(PROJECT)).filter((s) => s.flow === FLOW);
    expect(state).toBeDefined();
    const nowMs = Date.now();
    const coveredUntilMs = nowMs - 90_000;
    expect(
      await backend.advanceSchedule({
        project: PROJECT,
        flow: FLOW,
        name: state?.spec.name as string,
        expectedRevision: state?.revision as number,
        coveredUntilMs,
        nextTickMs: (Math.floor(coveredUntilMs / 60_000) + 1) * 60_000,
      }),
    ).toEqual({ advanced: true, created: [] });

    const result = await withEnv({ TERN_AGENT_LABELS: "scheduled" }, () =>
      agentHandler(scheduledEvent(), context(60_000)),
    );
    const doneMs = Date.now();
    const byTick = await runsByTick();
    const due = [...byTick.keys()].filter((tick) => tick <= nowMs);
    // The minutes in the last 90 s, and three minutes ahead (the Lambda polls every minute).
    expect(due.length).toBeGreaterThanOrEqual(1);
    expect([...byTick.keys()].every((tick) => tick % 60_000 === 0 && tick > coveredUntilMs)).toBe(true);
    expect([...byTick.keys()].filter((tick) => tick > doneMs).length).toBeGreaterThanOrEqual(2);
    expect(result).toMatchObject({ scheduled: byTick.size, failed: 0 });
    for (const tick of due) {
      const run = byTick.get(tick) as RunRecord;
      expect(run.state, run.reason).toBe("Submitted");
      expect(run.labels).toEqual(["scheduled"]);
      expect(run.idempotencyKey).toBe(`schedule:${FLOW}:v1:every 1m:${new Date(tick).toISOString()}`);
      expect(tasksOf(run.id)).toHaveLength(1);
    }
    for (const [tick, run] of byTick) if (tick > doneMs) expect(run.state).toBe("Scheduled");

    // Another invocation (another container, say) creates nothing twice and launches nothing twice.
    const again = await withEnv({ TERN_AGENT_LABELS: "scheduled" }, () =>
      agentHandler(scheduledEvent(), context(60_000)),
    );
    expect(again.failed).toBe(0);
    const after = await runsByTick();
    for (const tick of due) expect(after.get(tick)?.id).toBe(byTick.get(tick)?.id);
    // An agent without the runs' label creates them alike but launches none of them.
    expect((await agentHandler(scheduledEvent(), context(60_000))).failed).toBe(0);
    await runsByTick();
  });
});

describe("task-state events", { timeout: 60_000 }, () => {
  it("fails a run from an image-pull stop event alone, and ignores tasks that are not tern's", async () => {
    const { run } = await backend.createRun({ project: PROJECT, flow: "fargate-broken-image" });
    await resetRuntimes();
    await agentHandler({}, context(60_000));
    const submitted = await backend.getRun(run.id);
    const taskArn = submitted?.deployment?.taskArn as string;
    const stopped = await ecs.waitForTask(taskArn, "STOPPED");
    // The event's detail is the task as ECS describes it, with times as ISO strings.
    const event = taskStateEvent(stopped, taskArn);
    expect(event.detail.stoppedReason).toContain("CannotPullContainerError");
    // A task run left open (as by a runner that died mid-task) ends with the run.
    const open = { id: `${run.id}/t`, slug: "t", task: "t", state: "Running" as const, attempts: 1, logs: [] };
    await backend.saveTaskRuns(run.id, [open]);
    const result = await taskStateHandler(event);
    expect(result).toMatchObject({ status: "updated", runId: run.id, to: "Failed" });
    const failed = await backend.getRun(run.id);
    expect(failed?.state).toBe("Failed");
    expect(failed?.reason).toMatch(/could not pull the runner image ghcr\.io\/acme\/does-not-exist:1/);
    expect((await backend.getTaskRuns(run.id)).map((t) => [t.slug, t.state, t.message])).toEqual([
      ["t", "Failed", `the run ended: ${failed?.reason}`],
    ]);
    // Delivered again: nothing changes.
    expect(await taskStateHandler(event)).toMatchObject({ status: "unchanged" });

    const foreign = {
      ...event,
      detail: { ...event.detail, overrides: { containerOverrides: [] }, startedBy: "ecs-svc/123" },
    };
    expect(await taskStateHandler(foreign)).toMatchObject({ status: "ignored", reason: "not a tern task" });
    expect(await taskStateHandler({ ...event, "detail-type": "EC2 Instance State-change Notification" })).toMatchObject(
      {
        status: "ignored",
      },
    );
  });
});

describe("relaunches and cancellations", { timeout: 60_000 }, () => {
  it("relaunches at once from a stop event that says the task never started for a passing reason", async () => {
    await resetRuntimes();
    const { run } = await backend.createRun({ project: PROJECT, flow: "fargate-etl" });
    ecs.injectLaunchOutcomes([
      { kind: "fail-to-start", stoppedReason: "Timeout waiting for network interface provisioning to complete." },
    ]);
    await agentHandler({}, context(60_000));
    const first = (await backend.getRun(run.id))?.deployment?.taskArn as string;
    const stopped = await ecs.waitForTask(first, "STOPPED");
    const result = await taskStateHandler(taskStateEvent(stopped, first));
    expect(result).toMatchObject({ status: "updated", to: "Scheduled" });
    // Dispatched again by the handler itself, not at the next tick: a second task, the same run.
    const relaunched = await backend.getRun(run.id);
    expect(relaunched).toMatchObject({ state: "Submitted", deployment: { relaunches: 1, launch: 1 } });
    expect(relaunched?.deployment?.taskArn).not.toBe(first);
    expect(tasksOf(run.id)).toHaveLength(2);
    // The stale event of the first task, delivered late, changes nothing.
    expect(await taskStateHandler(taskStateEvent(stopped, first))).toMatchObject({ status: "ignored" });
  });

  it("stops a cancelled run's task from the scheduled agent's sweep, then ends the run Cancelled", async () => {
    await resetRuntimes();
    const { run } = await backend.createRun({ project: PROJECT, flow: "fargate-etl" });
    await agentHandler({}, context(60_000));
    const submitted = (await backend.getRun(run.id)) as RunRecord;
    const taskArn = submitted.deployment?.taskArn as string;
    await ecs.waitForTask(taskArn, "RUNNING");
    await backend.transitionRun({
      runId: run.id,
      expectedRevision: submitted.revision,
      to: "Cancelling",
      reason: "tern cancel",
    });
    await agentHandler({}, context(60_000));
    expect(
      ecs.callLog.filter((c) => c.operation === "StopTask").map((c) => (c.input as { task: string }).task),
    ).toContain(taskArn);
    const stopped = await ecs.waitForTask(taskArn, "STOPPED");
    expect(stopped.stopCode).toBe("UserInitiated");
    // The stop event (or the next tick's sweep) ends the run.
    expect(await taskStateHandler(taskStateEvent(stopped, taskArn))).toMatchObject({
      status: "updated",
      to: "Cancelled",
    });
    expect((await backend.getRun(run.id))?.state).toBe("Cancelled");
  });
});

describe("event triggers (EventBridge)", { timeout: 60_000 }, () => {
  it("starts one run and one task for an event delivered five times, dispatched at once", async () => {
    const event = objectCreated("incoming/orders-1.csv");
    const before = ecs.calls.RunTask;
    const results = await Promise.all(Array.from({ length: 5 }, () => triggerHandler(event)));
    const runIds = new Set(results.flatMap((r) => r.runs.map((run) => run.runId)));
    expect(runIds.size).toBe(1);
    const runId = [...runIds][0] as string;
    expect(results.filter((r) => r.runs[0]?.created === true)).toHaveLength(1);
    expect(results.filter((r) => r.runs[0]?.dispatch === "submitted")).toHaveLength(1);
    const run = await backend.getRun(runId);
    // Launched without an agent tick: Submitted, its task recorded, its parameter from the event.
    expect(run).toMatchObject({ state: "Submitted", parameters: { key: "incoming/orders-1.csv" } });
    expect(run?.idempotencyKey).toBe(`eventbridge:${event.id}#uploads`);
    expect(tasksOf(runId)).toHaveLength(1);
    expect(ecs.calls.RunTask - before).toBe(1);
  });

  it("throws when S3 answers 503 for the flow's manifest, so Lambda delivers the event again; the redelivery starts the run", async () => {
    const event = objectCreated("incoming/during-an-outage.csv");
    // A new container: the flow's manifest is read from S3 (a warm one keeps it).
    await resetRuntimes();
    s3Proxy.failWhen((method, path) => method === "GET" && path.includes("/flows/"));
    try {
      await expect(triggerHandler(event)).rejects.toMatchObject({ code: "STORAGE_UNAVAILABLE", retryable: true });
    } finally {
      s3Proxy.heal();
    }
    expect(s3Proxy.failed.length).toBeGreaterThan(0);
    expect(
      (await runsOf("fargate-ingest")).filter((r) => r.idempotencyKey === `eventbridge:${event.id}#uploads`),
    ).toEqual([]);
    const again = await triggerHandler(event);
    expect(again.runs).toEqual([expect.objectContaining({ created: true, dispatch: "submitted" })]);
    expect(tasksOf(again.runs[0]?.runId as string)).toHaveLength(1);
  });

  it("reads the flow's manifest from S3 once per event on a new container (not once to check and again to launch), and not at all when warm", async () => {
    await resetRuntimes();
    const manifestGets = () => s3Proxy.seen.filter((r) => r.startsWith("GET ") && /\/flows\/.*\.json/.test(r)).length;
    const before = manifestGets();
    const cold = await triggerHandler(objectCreated("incoming/cold.csv"));
    expect(cold.runs).toEqual([expect.objectContaining({ created: true, dispatch: "submitted" })]);
    expect(manifestGets() - before).toBe(1);
    const warm = await triggerHandler(objectCreated("incoming/warm.csv"));
    expect(warm.runs).toEqual([expect.objectContaining({ created: true, dispatch: "submitted" })]);
    expect(manifestGets() - before).toBe(1);
  });

  it("launches nothing past the invocation's deadline: the run is created and left Scheduled for the next tick", async () => {
    const runTasks = ecs.calls.RunTask;
    // Less time left than TERN_SAFETY_MARGIN_MS (15 s by default): the deadline has passed.
    const result = await triggerHandler(objectCreated("incoming/late.csv"), context(5_000));
    expect(result.runs).toEqual([
      expect.objectContaining({ created: true, dispatch: "skipped", reason: expect.stringMatching(/no time left/) }),
    ]);
    expect(await backend.getRun(result.runs[0]?.runId as string)).toMatchObject({ state: "Scheduled" });
    expect(ecs.calls.RunTask).toBe(runTasks);
    await agentHandler({}, context(60_000));
    expect(await backend.getRun(result.runs[0]?.runId as string)).toMatchObject({ state: "Submitted" });
  });

  it("starts nothing for an event no rule matches, or one that is not an EventBridge event", async () => {
    const before = (await runsOf("fargate-ingest")).length;
    const other = { ...objectCreated("x.csv"), detail: { ...objectCreated("x.csv").detail, bucket: { name: "logs" } } };
    expect(await triggerHandler(other)).toMatchObject({ status: "unmatched", runs: [] });
    expect(await triggerHandler({ source: "aws.s3" } as never)).toMatchObject({ status: "rejected" });
    expect((await runsOf("fargate-ingest")).length).toBe(before);
  });
});

describe("CloudEvents over HTTP", { timeout: 60_000 }, () => {
  it("accepts a signed structured event with 202 and the run id, and the same id for a duplicate", async () => {
    const id = randomUUID();
    const body = structured(id);
    const first = await cloudEventsHandler(httpRequest(body, signed(body)));
    expect(first).toMatchObject({ statusCode: 202 });
    const reply = JSON.parse((first as { body: string }).body) as {
      runs: Array<{ runId: string; duplicate: boolean }>;
    };
    const runId = reply.runs[0]?.runId as string;
    expect(reply.runs).toEqual([expect.objectContaining({ flow: "fargate-ingest", duplicate: false })]);
    const again = await cloudEventsHandler(httpRequest(body, signed(body)));
    expect(JSON.parse((again as { body: string }).body).runs).toEqual([
      expect.objectContaining({ runId, duplicate: true }),
    ]);
    expect(await backend.getRun(runId)).toMatchObject({ state: "Submitted", parameters: { key: `order-${id}` } });
    expect(tasksOf(runId)).toHaveLength(1);
  });

  it("makes one run and one task when the same CloudEvent arrives five times at once", async () => {
    const body = structured(randomUUID());
    const replies = await Promise.all(
      Array.from(
        { length: 5 },
        () => cloudEventsHandler(httpRequest(body, signed(body))) as Promise<{ statusCode: number; body: string }>,
      ),
    );
    expect(replies.map((r) => r.statusCode)).toEqual([202, 202, 202, 202, 202]);
    const ids = new Set(replies.map((r) => JSON.parse(r.body).runs[0].runId as string));
    expect(ids.size).toBe(1);
    expect(tasksOf([...ids][0] as string)).toHaveLength(1);
  });

  it("accepts a signed binary-mode event", async () => {
    const id = randomUUID();
    const body = JSON.stringify({ orderId: `order-${id}` });
    const headers = {
      "content-type": "application/json",
      "ce-specversion": "1.0",
      "ce-id": id,
      "ce-source": "/orders/us",
      "ce-type": "com.acme.order.created",
    };
    const signature = signRequest(HMAC_KEY, headers, body);
    const response = await cloudEventsHandler(httpRequest(body, { ...headers, [SIGNATURE_HEADER]: signature }));
    expect(response).toMatchObject({ statusCode: 202 });
    // The same signed request replayed with another event id: refused, no second run.
    const replayed = await cloudEventsHandler(
      httpRequest(body, { ...headers, "ce-id": randomUUID(), [SIGNATURE_HEADER]: signature }),
    );
    expect(replayed).toMatchObject({ statusCode: 401 });
    const runId = JSON.parse((response as { body: string }).body).runs[0].runId as string;
    expect(await backend.getRun(runId)).toMatchObject({ parameters: { key: `order-${id}` } });
  });

  it("refuses a bad signature, a replayed timestamp, a malformed event, an oversized body and an unmatched event, starting no run", async () => {
    const before = (await runsOf("fargate-ingest")).length;
    const statusOf = async (request: ReturnType<typeof httpRequest>) => {
      const response = (await cloudEventsHandler(request)) as { statusCode: number; body: string };
      return [response.statusCode, JSON.parse(response.body).error as string] as const;
    };
    const body = structured(randomUUID());
    const [badStatus, badReason] = await statusOf(httpRequest(body, signed(body, undefined, "b".repeat(40))));
    expect(badStatus).toBe(401);
    expect(badReason).toMatch(/does not match the request/);
    const [replayStatus, replayReason] = await statusOf(
      httpRequest(body, signed(body, Math.floor(Date.now() / 1000) - 3_600)),
    );
    expect(replayStatus).toBe(401);
    expect(replayReason).toMatch(/replay/);
    const [noSigStatus] = await statusOf(httpRequest(body, { "content-type": "application/cloudevents+json" }));
    expect(noSigStatus).toBe(401);
    const malformed = JSON.stringify({ specversion: "1.0", id: "x", source: "/orders" });
    const [malformedStatus, malformedReason] = await statusOf(httpRequest(malformed, signed(malformed)));
    expect(malformedStatus).toBe(400);
    expect(malformedReason).toMatch(/not a valid CloudEvent/);
    const huge = structured(randomUUID(), "com.acme.order.created", { pad: "x".repeat(300 * 1024) });
    expect((await statusOf(httpRequest(huge, signed(huge))))[0]).toBe(413);
    const unmatched = structured(randomUUID(), "com.acme.invoice.paid");
    const [unmatchedStatus, unmatchedReason] = await statusOf(httpRequest(unmatched, signed(unmatched)));
    expect(unmatchedStatus).toBe(404);
    expect(unmatchedReason).toMatch(/com\.acme\.invoice\.paid/);
    expect((await runsOf("fargate-ingest")).length).toBe(before);
  });

  it("answers 503 (retry) when S3 answers 503 for the flow's manifest, and 202 with the run once S3 is back", async () => {
    const body = structured(randomUUID());
    // A new container: the flow's manifest is read from S3 (a warm one keeps it).
    await resetRuntimes();
    s3Proxy.failWhen((method, path) => method === "GET" && path.includes("/flows/"));
    let during: { statusCode: number; headers: Record<string, string>; body: string };
    try {
      during = (await cloudEventsHandler(httpRequest(body, signed(body)))) as typeof during;
    } finally {
      s3Proxy.heal();
    }
    expect(during.statusCode).toBe(503);
    expect(during.headers["retry-after"]).toBeDefined();
    const after = (await cloudEventsHandler(httpRequest(body, signed(body)))) as { statusCode: number; body: string };
    expect(after.statusCode).toBe(202);
    expect(JSON.parse(after.body).runs).toEqual([expect.objectContaining({ duplicate: false })]);
  });

  it("accepts a key rotated in Secrets Manager on a warm container: a signature that matches no key reads the secret again", async () => {
    const oldKey = "o".repeat(40);
    const newKey = "n".repeat(40);
    const secrets = mockClient(SecretsManagerClient);
    onTestFinished(() => secrets.restore());
    secrets.on(GetSecretValueCommand).resolves({ SecretString: oldKey });
    const send = (key: string, v1 = false) => {
      const body = structured(randomUUID());
      const headers = { "content-type": "application/cloudevents+json" };
      const signature = (v1 ? signRequestV1 : signRequest)(key, headers, body);
      return cloudEventsHandler(httpRequest(body, { ...headers, [SIGNATURE_HEADER]: signature })) as Promise<{
        statusCode: number;
      }>;
    };
    const secretInSecretsManager = {
      TERN_CLOUDEVENTS_SECRET: "",
      TERN_CLOUDEVENTS_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:tern-cloudevents-AbCdEf",
    };
    await withEnv(secretInSecretsManager, async () => {
      expect((await send(oldKey)).statusCode).toBe(202);
      // Senders of the format before v2 keep working with the key they have.
      expect((await send(oldKey, true)).statusCode).toBe(202);
      expect(secrets).toHaveReceivedCommandOnce(GetSecretValueCommand);
      // The rotation: the warm container still holds the old key alone.
      secrets
        .on(GetSecretValueCommand)
        .resolves({ SecretString: JSON.stringify({ current: newKey, previous: oldKey }) });
      expect((await send(newKey)).statusCode).toBe(202);
      expect(secrets).toHaveReceivedCommandTimes(GetSecretValueCommand, 2);
      expect((await send(oldKey)).statusCode).toBe(202);
      // v1 lasts one rotation: the previous key accepts it, the new current key does not.
      expect((await send(oldKey, true)).statusCode).toBe(202);
      expect((await send(newKey, true)).statusCode).toBe(401);
    });
  });

  it("refuses an oversized body before the cold start reads its configuration", async () => {
    // A configuration that cannot start: anything that reached the cold start would throw.
    await withEnv({ TERN_BACKEND: "" }, async () => {
      const huge = structured(randomUUID(), "com.acme.order.created", { pad: "x".repeat(300 * 1024) });
      expect(await cloudEventsHandler(httpRequest(huge, signed(huge)))).toMatchObject({ statusCode: 413 });
      const small = structured(randomUUID());
      await expect(cloudEventsHandler(httpRequest(small, signed(small)))).rejects.toThrow(ConfigError);
    });
  });

  it("with a launch queue, answers 202 once the run exists and hands the launch to the queue, which the agent consumes", async () => {
    const queueUrl = "https://sqs.us-east-1.amazonaws.com/123456789012/tern-launch";
    const queue = mockClient(SQSClient);
    onTestFinished(() => queue.restore());
    queue.on(SendMessageCommand).resolves({ MessageId: "m-1" });
    const sqsEvent = (body: string): SQSEvent => ({
      Records: [
        {
          messageId: randomUUID(),
          receiptHandle: "handle",
          body,
          attributes: {
            ApproximateReceiveCount: "1",
            SentTimestamp: String(Date.now()),
            SenderId: "AROAEXAMPLE",
            ApproximateFirstReceiveTimestamp: String(Date.now()),
          },
          messageAttributes: {},
          md5OfBody: "",
          eventSource: "aws:sqs",
          eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:tern-launch",
          awsRegion: "us-east-1",
        },
      ],
    });
    /** Posts a signed new event and checks the 202; resolves the id of the run it started. */
    const accepted = async () => {
      const body = structured(randomUUID());
      const response = (await cloudEventsHandler(httpRequest(body, signed(body)), context(30_000))) as {
        statusCode: number;
        body: string;
      };
      expect(response.statusCode).toBe(202);
      return JSON.parse(response.body).runs[0].runId as string;
    };
    await withEnv({ TERN_LAUNCH_QUEUE_URL: queueUrl }, async () => {
      const runTasks = ecs.calls.RunTask;
      const runId = await accepted();
      // Answered before any launch: the run exists, Scheduled, and ECS was not called.
      expect(await backend.getRun(runId)).toMatchObject({ state: "Scheduled" });
      expect(ecs.calls.RunTask).toBe(runTasks);
      const sent = queue.commandCalls(SendMessageCommand);
      expect(sent).toHaveLength(1);
      const input = sent[0]?.args[0].input as { QueueUrl: string; MessageBody: string };
      expect(input.QueueUrl).toBe(queueUrl);
      expect(JSON.parse(input.MessageBody)).toEqual({ tern: "launch", runIds: [runId] });

      const launched = await agentHandler(sqsEvent(input.MessageBody), context(60_000));
      expect(launched).toEqual({ launched: 1, skipped: [], batchItemFailures: [] });
      expect(await backend.getRun(runId)).toMatchObject({ state: "Submitted" });
      expect(tasksOf(runId)).toHaveLength(1);
      // SQS delivers at least once: the message again launches nothing more.
      const again = await agentHandler(sqsEvent(input.MessageBody), context(60_000));
      expect(again).toMatchObject({ launched: 0, skipped: [{ runId, reason: "it is Submitted" }] });
      expect(tasksOf(runId)).toHaveLength(1);

      // The queue unreachable: still 202 (the run exists; the agent's next tick launches it).
      queue.on(SendMessageCommand).rejects(new Error("connect ETIMEDOUT"));
      const lostRun = await accepted();
      expect(await backend.getRun(lostRun)).toMatchObject({ state: "Scheduled" });
      await agentHandler({}, context(60_000));
      expect(await backend.getRun(lostRun)).toMatchObject({ state: "Submitted" });
    });
  });

  it("with IAM auth, refuses a request without an IAM identity and accepts one with it", async () => {
    await withEnv({ TERN_CLOUDEVENTS_AUTH: "iam" }, async () => {
      const body = structured(randomUUID());
      const headers = { "content-type": "application/cloudevents+json" };
      expect(await cloudEventsHandler(httpRequest(body, headers))).toMatchObject({ statusCode: 401 });
      expect(await cloudEventsHandler(httpRequest(body, headers, true))).toMatchObject({ statusCode: 202 });
    });
  });
});
