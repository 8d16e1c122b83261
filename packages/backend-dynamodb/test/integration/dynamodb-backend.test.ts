import { CreateTableCommand, DynamoDBClient, GetItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { createTernTable, DynamoDbBackend, type DynamoDbBackendOptions } from "@tern/backend-dynamodb";
import { NotFoundError } from "@tern/core";
import { BackendError, type SerializedTaskRun, type SerializedValue } from "@tern/core/plugin";
import { openBackend } from "@tern/core/runtime";
import { type DynamoDbLocal, LOCAL_CREDENTIALS, LOCAL_REGION } from "@tern/test-support/dynamodb-local";
import { startThrottleProxy } from "@tern/test-support/fault-proxy";
import { registerTestFlow } from "@tern/test-support/flow-versions";
import { useDynamoDbLocal } from "@tern/test-support/use-dynamodb-local";
import { describe, expect, it } from "vitest";

const TABLE = "tern-integration";
let local: DynamoDbLocal;
let client: DynamoDBClient;

useDynamoDbLocal(async (started, startedClient) => {
  local = started;
  client = startedClient;
  await createTernTable(client, TABLE);
});

let projects = 0;
/** A backend on the shared table and a flow "etl" registered in a project of its own. */
async function setup(
  options: Partial<DynamoDbBackendOptions> = {},
): Promise<{ backend: DynamoDbBackend; project: string; [Symbol.asyncDispose](): Promise<void> }> {
  const backend = await DynamoDbBackend.open({ table: TABLE, client, ...options });
  projects += 1;
  const project = `it-${projects}`;
  await registerTestFlow(backend, { project });
  return { backend, project, [Symbol.asyncDispose]: () => backend.close() };
}

/** Creates a run of flow "etl" in `project` and moves it to Running. */
async function startRun(backend: DynamoDbBackend, project: string) {
  const { run } = await backend.createRun({ project, flow: "etl" });
  const running = await backend.transitionRun({
    runId: run.id,
    expectedRevision: run.revision,
    to: "Running",
    reason: "go",
  });
  return { run, running };
}

/** `bytes` (rounded up to 7) of UTF-8 text with two- and four-byte characters, which chunk borders split. */
function bigText(bytes: number): string {
  return "aé😀".repeat(Math.ceil(bytes / 7));
}

async function rawItem(pk: string, sk: string): Promise<Record<string, unknown> | undefined> {
  const { Item } = await client.send(new GetItemCommand({ TableName: TABLE, Key: { PK: { S: pk }, SK: { S: sk } } }));
  return Item === undefined ? undefined : unmarshall(Item);
}

async function rawItemCount(pk: string, prefix: string): Promise<number> {
  const { Count } = await client.send(
    new QueryCommand({
      TableName: TABLE,
      KeyConditionExpression: "PK = :pk AND begins_with(SK, :prefix)",
      ExpressionAttributeValues: { ":pk": { S: pk }, ":prefix": { S: prefix } },
      Select: "COUNT",
    }),
  );
  return Count ?? 0;
}

describe("DynamoDbBackend.open", () => {
  it("fails with a BackendError naming a missing table, its region and how to create it", async () => {
    const attempt = DynamoDbBackend.open({ table: "no-such-table", client });
    await expect(attempt).rejects.toThrow(BackendError);
    await expect(attempt).rejects.toThrow(/table "no-such-table" does not exist in region us-east-1/);
    await expect(attempt).rejects.toThrow(/createTernTable\(client, "no-such-table"\)/);
    await expect(attempt).rejects.toThrow(/aws dynamodb create-table --region us-east-1 --table-name no-such-table/);
    // A missing table is the deployment's fault, not a passing one.
    await expect(attempt).rejects.toMatchObject({ retryable: false, cause: { name: "ResourceNotFoundException" } });
  });

  it("fails with a BackendError naming what a table that is not tern's lacks", async () => {
    await client.send(
      new CreateTableCommand({
        TableName: "not-tern",
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      }),
    );
    const attempt = DynamoDbBackend.open({ table: "not-tern", client });
    await expect(attempt).rejects.toThrow(/table "not-tern" in us-east-1 is not a tern table: its key is/);
    await expect(attempt).rejects.toThrow(/index GSI1 is missing/);
  });

  it("rejects a client given together with an endpoint, and an invalid table name", async () => {
    await expect(DynamoDbBackend.open({ table: TABLE, client, endpoint: local.endpoint })).rejects.toThrow(
      /either client, or region\/endpoint/,
    );
    await expect(DynamoDbBackend.open({ table: "a b", client })).rejects.toThrow(/table "a b" is not a valid/);
  });

  it("rejects calls after close with a BackendError", async () => {
    const backend = await DynamoDbBackend.open({ table: TABLE, client });
    await backend.close();
    await expect(backend.getRun("x")).rejects.toThrow(/is closed/);
    await expect(backend.listRuns()).rejects.toThrow(BackendError);
  });
});

describe("dynamodb:// URLs", () => {
  it("opens the table named by dynamodb://<table>?region=<r>&endpoint=<url> through openBackend", async () => {
    // The URL carries no credentials: the SDK's chain finds these, as it would AWS_PROFILE or a role.
    process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
    const url = `dynamodb://${TABLE}?region=us-east-1&endpoint=${local.endpoint}`;
    const backend = await openBackend(url);
    try {
      expect(backend).toBeInstanceOf(DynamoDbBackend);
      expect(backend.url).toBe(url);
      await registerTestFlow(backend, { project: "via-url" });
      expect((await backend.createRun({ project: "via-url", flow: "etl" })).run.state).toBe("Scheduled");
    } finally {
      await backend.close();
    }
  });

  it("rejects a malformed dynamodb:// URL in openBackend, naming it and the expected form", async () => {
    await expect(openBackend("dynamodb://t?region=us-east-1")).rejects.toThrow(
      /Backend URL "dynamodb:\/\/t\?region=us-east-1": table "t" is not a valid DynamoDB table name.*Use dynamodb:\/\/<table>\?region=<region>&endpoint=<url>/,
    );
    await expect(openBackend("dynamodb://tern?endpoint=127.0.0.1:8000")).rejects.toMatchObject({
      code: "BACKEND_URL",
      message: expect.stringContaining('endpoint "127.0.0.1:8000" is not an http:// or https:// URL'),
    });
  });
});

describe("large values", () => {
  it("round-trips 1 MB of outputs stored as chunk items, keeping the run item small", async () => {
    await using t = await setup();
    const { backend, project } = t;
    const { run } = await backend.createRun({ project, flow: "etl" });
    const running = await backend.transitionRun({ runId: run.id, expectedRevision: 1, to: "Running" });
    const outputs: Record<string, SerializedValue> = {
      table: { kind: "json", value: bigText(1_000_000) },
      small: { kind: "json", value: 3 },
    };
    const done = await backend.transitionRun({
      runId: run.id,
      expectedRevision: running.revision,
      to: "Success",
      outputs,
    });
    expect(done.outputs).toEqual(outputs);
    expect(await backend.getRun(run.id)).toEqual(done);
    const item = await rawItem(`RUN#${run.id}`, "RUN");
    expect(Buffer.byteLength(JSON.stringify(item))).toBeLessThan(10_000);
    expect(item?.outputsRef).toMatchObject({ chunks: 4, bytes: Buffer.byteLength(JSON.stringify(outputs)) });
    // Another process reading it gets it whole too.
    const other = await DynamoDbBackend.open({ table: TABLE, client });
    try {
      expect((await other.getRun(run.id))?.outputs).toEqual(outputs);
    } finally {
      await other.close();
    }
  });

  it("deletes the chunks of outputs it replaces, and of outputs a lost write stored", async () => {
    await using t = await setup();
    const { backend, project } = t;
    const { run } = await backend.createRun({ project, flow: "etl" });
    const first = { a: { kind: "json", value: bigText(300_000) } } as const;
    const second = { a: { kind: "json", value: bigText(600_000) } } as const;
    const r2 = await backend.transitionRun({ runId: run.id, expectedRevision: 1, to: "Running", outputs: first });
    const stale = backend.transitionRun({ runId: run.id, expectedRevision: 1, to: "Running", outputs: second });
    await expect(stale).rejects.toMatchObject({ code: "RUN_CONFLICT" });
    expect(await rawItemCount(`RUN#${run.id}`, "OUT#")).toBe(2); // 300 KB in 256 KiB chunks
    const r3 = await backend.transitionRun({
      runId: run.id,
      expectedRevision: r2.revision,
      to: "Success",
      outputs: second,
    });
    expect(r3.outputs).toEqual(second);
    expect(await rawItemCount(`RUN#${run.id}`, "OUT#")).toBe(3);
  });

  it("round-trips 1 MB of parameters through create, read, list and claim", async () => {
    await using t = await setup();
    const { backend, project } = t;
    const parameters = { rows: bigText(1_000_000), n: 1 };
    const { run } = await backend.createRun({ project, flow: "etl", parameters, labels: [project] });
    expect(run.parameters).toEqual(parameters);
    expect((await backend.getRun(run.id))?.parameters).toEqual(parameters);
    expect((await backend.listRuns({ project }))[0]?.parameters).toEqual(parameters);
    const [claimed] = await backend.claimRuns({ agentId: "a", labels: [project], limit: 1, leaseMs: 60_000 });
    expect(claimed?.parameters).toEqual(parameters);
    expect(await rawItemCount(`RUN#${run.id}`, "PAR#")).toBe(4);
  });

  it("round-trips a task run with a 1 MB result and deletes its chunks when it is saved small again", async () => {
    await using t = await setup();
    const { backend, project } = t;
    const { run } = await backend.createRun({ project, flow: "etl" });
    const big: SerializedTaskRun = {
      id: `${run.id}/load`,
      slug: "load",
      task: "load",
      state: "Success",
      attempts: 1,
      logs: [],
      result: { kind: "json", value: bigText(1_000_000) },
    };
    await backend.saveTaskRuns(run.id, [big]);
    expect(await backend.getTaskRuns(run.id)).toEqual([big]);
    expect(await rawItemCount(`RUN#${run.id}`, "TB#")).toBe(4);
    const small = { ...big, result: { kind: "json", value: 1 } } as const;
    await backend.saveTaskRuns(run.id, [small]);
    expect(await backend.getTaskRuns(run.id)).toEqual([small]);
    expect(await rawItemCount(`RUN#${run.id}`, "TB#")).toBe(0);
  });

  it("stores a 1 MB log record cut to 64 KB with a note, between records it keeps as they are", async () => {
    await using t = await setup();
    const { backend, project } = t;
    const { run } = await backend.createRun({ project, flow: "etl" });
    const record = (message: string) =>
      ({ taskRunId: `${run.id}/t`, timeMs: 1, level: "info", message, source: "console" }) as const;
    await backend.appendLogs(run.id, [record("before"), record(bigText(1_000_000)), record("after")]);
    const logs = await backend.getLogs(run.id);
    expect(logs.map((l) => l.message.slice(0, 6))).toEqual(["before", "aé😀aé", "after"]);
    expect(logs[1]?.message).toMatch(
      /… \[truncated: \d+ more characters; a log record holds at most 64 KB in DynamoDB\]$/,
    );
    expect(Buffer.byteLength(logs[1]?.message ?? "")).toBeLessThan(64 * 1024);
  });

  it("pages through more log records than one query returns, in the order they were appended", async () => {
    await using t = await setup();
    const { backend, project } = t;
    const { run } = await backend.createRun({ project, flow: "etl" });
    const message = "x".repeat(30_000); // 3,000 records of 30 KB: about 90 MB, past 1 MB query pages
    for (let batch = 0; batch < 3; batch++) {
      await backend.appendLogs(
        run.id,
        Array.from({ length: 100 }, (_, i) => ({
          taskRunId: "t",
          timeMs: batch * 100 + i,
          level: "info" as const,
          message,
          source: "logger" as const,
        })),
      );
    }
    const logs = await backend.getLogs(run.id);
    expect(logs.map((l) => l.timeMs)).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it("cuts a log page at a 1 MB query with a next, and the pages hold every record once", async () => {
    await using t = await setup();
    const { backend, project } = t;
    const { run } = await backend.createRun({ project, flow: "etl" });
    const message = "y".repeat(30_000); // 100 records of 30 KB: a 1 MB query holds about 34
    await backend.appendLogs(
      run.id,
      Array.from({ length: 100 }, (_, i) => ({
        taskRunId: "t",
        timeMs: i,
        level: "info" as const,
        message,
        source: "logger" as const,
      })),
    );
    const before = backend.usage.requests;
    const first = await backend.getLogPage(run.id, { limit: 100 });
    expect(backend.usage.requests - before).toBe(1);
    expect(first.records.length).toBeGreaterThan(0);
    expect(first.records.length).toBeLessThan(100);
    expect(first.next).toBeDefined();
    const seen = [...first.records];
    for (let next = first.next; next !== undefined; ) {
      const page = await backend.getLogPage(run.id, { limit: 100, after: next });
      seen.push(...page.records);
      next = page.next;
    }
    expect(seen.map((l) => l.timeMs)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});

describe("requests per run", () => {
  it("takes 8 requests to create, claim and move a run through four states", async () => {
    await using t = await setup();
    const { backend, project } = t;
    const count = async <T>(step: () => Promise<T>): Promise<[T, number]> => {
      const before = backend.usage.requests;
      const result = await step();
      return [result, backend.usage.requests - before];
    };
    const [{ run }, create] = await count(() =>
      backend.createRun({ project, flow: "etl", labels: [project], idempotencyKey: "e1" }),
    );
    const [[claimed], claim] = await count(() =>
      backend.claimRuns({ agentId: "a", labels: [project], limit: 1, leaseMs: 60_000 }),
    );
    expect(claimed?.id).toBe(run.id);
    let revision = claimed?.revision ?? 0;
    const moves: number[] = [];
    for (const [to, extra] of [
      ["Submitted", { reason: "claimed by a", lease: null }],
      ["Running", {}],
      ["Running", { deployment: { pid: 1 } }],
      ["Success", { outputs: { n: { kind: "json", value: 1 } } }],
    ] as const) {
      const [moved, requests] = await count(() =>
        backend.transitionRun({ runId: run.id, expectedRevision: revision, to, ...extra }),
      );
      revision = moved.revision;
      moves.push(requests);
    }
    expect({ create, claim, moves }).toEqual({ create: 2, claim: 2, moves: [1, 1, 1, 1] });
    expect(backend.usage.capacityUnits).toBeGreaterThan(0);
  });

  it("moves a run another backend wrote in one request, and patches it in its state in two", async () => {
    await using t = await setup();
    const { backend, project } = t;
    const { run } = await backend.createRun({ project, flow: "etl" });
    const other = await DynamoDbBackend.open({ table: TABLE, client });
    try {
      const start = other.usage.requests;
      const running = await other.transitionRun({ runId: run.id, expectedRevision: 1, to: "Running", reason: "go" });
      expect(other.usage.requests - start).toBe(1);
      const third = await DynamoDbBackend.open({ table: TABLE, client });
      try {
        const patched = await third.transitionRun({
          runId: run.id,
          expectedRevision: running.revision,
          to: "Running",
          deployment: { pid: 7 },
        });
        // The first try assumed a change of state; the run's real state came back with the failed condition.
        expect(third.usage.requests - 1).toBe(2);
        expect(patched).toMatchObject({ state: "Running", reason: "go", deployment: { pid: 7 } });
        expect((await third.getRunHistory(run.id)).map((h) => h.state)).toEqual(["Scheduled", "Running"]);
      } finally {
        await third.close();
      }
    } finally {
      await other.close();
    }
  });
});

describe("faults", () => {
  /** A throttling proxy in front of DynamoDB Local, and a client through it that makes `maxAttempts` attempts. */
  async function throttling(maxAttempts: number) {
    const proxy = await startThrottleProxy(local.endpoint);
    const throttled = new DynamoDBClient({
      endpoint: proxy.endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts,
    });
    return { proxy, throttled };
  }

  it("retries a throttled request through the SDK and succeeds", async () => {
    const { proxy, throttled } = await throttling(3);
    try {
      const backend = await DynamoDbBackend.open({ table: TABLE, client: throttled });
      proxy.throttle("GetItem", 2);
      expect(await backend.getRun("no-such-run")).toBeUndefined();
      expect(proxy.requests.filter((r) => r.operation === "GetItem").map((r) => r.throttled)).toEqual([
        true,
        true,
        false,
      ]);
      expect(backend.usage.requests).toBe(2); // DescribeTable and one GetItem: retries are the SDK's
      await backend.close();
    } finally {
      throttled.destroy();
      await proxy.close();
    }
  });

  it("fails with a BackendError saying DynamoDB throttled once the SDK's retries run out", async () => {
    const { proxy, throttled } = await throttling(2);
    try {
      const backend = await DynamoDbBackend.open({ table: TABLE, client: throttled });
      proxy.throttle("Query", 10);
      const attempt = backend.listRuns({ state: "Running" });
      await expect(attempt).rejects.toThrow(BackendError);
      await expect(attempt).rejects.toThrow(
        /cannot list runs: DynamoDB throttled the request 2 times \(the SDK retried with backoff\).*ProvisionedThroughputExceededException.*maxAttempts/,
      );
      // Transient: an event that met it is delivered again (the Lambda handlers' isPassing).
      await expect(attempt).rejects.toMatchObject({
        retryable: true,
        cause: { name: "ProvisionedThroughputExceededException" },
      });
      expect(proxy.requests.filter((r) => r.operation === "Query")).toHaveLength(2);
      await backend.close();
    } finally {
      throttled.destroy();
      await proxy.close();
    }
  });

  it("fails with a BackendError naming the endpoint when DynamoDB cannot be reached", async () => {
    const proxy = await startThrottleProxy(local.endpoint);
    const endpoint = proxy.endpoint;
    await proxy.close();
    const attempt = DynamoDbBackend.open({ table: TABLE, endpoint, region: LOCAL_REGION });
    await expect(attempt).rejects.toThrow(BackendError);
    await expect(attempt).rejects.toThrow(new RegExp(`cannot open the table: cannot reach DynamoDB.*${endpoint}`));
    await expect(attempt).rejects.toMatchObject({ retryable: true });
  });

  it("rejects task runs and logs of an unknown run with NotFoundError", async () => {
    await using t = await setup();
    const { backend } = t;
    await expect(backend.saveTaskRuns("no-such-run", [])).rejects.toThrow(NotFoundError);
    await expect(
      backend.appendLogs("no-such-run", [{ taskRunId: "t", timeMs: 1, level: "info", message: "m", source: "logger" }]),
    ).rejects.toMatchObject({ code: "NOT_FOUND", kind: "run", id: "no-such-run" });
  });
});

describe("run retention", () => {
  it("gives an ended run a TTL of runRetentionDays, and none while it runs", async () => {
    await using t = await setup({ runRetentionDays: 30 });
    const { backend, project } = t;
    {
      const { run, running } = await startRun(backend, project);
      expect((await rawItem(`RUN#${run.id}`, "RUN"))?.expiresAt).toBeUndefined();
      const before = Math.floor(Date.now() / 1000);
      await backend.transitionRun({ runId: run.id, expectedRevision: running.revision, to: "Success" });
      const expiresAt = (await rawItem(`RUN#${run.id}`, "RUN"))?.expiresAt as number;
      expect(expiresAt).toBeGreaterThanOrEqual(before + 30 * 86_400);
      expect(expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 30 * 86_400);
    }
  });

  it("rejects a runRetentionDays that is not a whole number of days", async () => {
    await expect(DynamoDbBackend.open({ table: TABLE, client, runRetentionDays: 0.5 })).rejects.toThrow(
      /runRetentionDays 0.5 must be a whole number of days >= 1/,
    );
  });
});

describe("a write whose response is lost", () => {
  /** Forwards to DynamoDB Local; when armed, lets one request of `operation` land, then resets the connection. */
  async function dropOneResponse(operation: string) {
    const { createServer, request } = await import("node:http");
    const upstream = new URL(local.endpoint);
    let armed = false;
    const server = createServer((req, res) => {
      const drop = armed && String(req.headers["x-amz-target"] ?? "").endsWith(operation);
      if (drop) armed = false;
      const forward = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          if (drop) {
            answer.resume();
            answer.on("end", () => req.socket.destroy());
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address() as { port: number };
    const viaProxy = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${address.port}`,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    return {
      client: viaProxy,
      arm: () => {
        armed = true;
      },
      close: () => {
        viaProxy.destroy();
        server.closeAllConnections();
        server.close();
      },
    };
  }

  /** Runs `test` on a backend whose UpdateItem response, once `arm`ed, is dropped once. */
  async function withDroppedUpdate(
    test: (t: { backend: DynamoDbBackend; project: string; arm: () => void }) => Promise<void>,
  ): Promise<void> {
    const proxy = await dropOneResponse("UpdateItem");
    try {
      await using t = await setup({ client: proxy.client });
      await test({ backend: t.backend, project: t.project, arm: proxy.arm });
    } finally {
      proxy.close();
    }
  }

  it("counts a transition that landed as done when the SDK's retry meets its own write, keeping large outputs", async () => {
    await withDroppedUpdate(async ({ backend, project, arm }) => {
      const { run, running } = await startRun(backend, project);
      const outputs: Record<string, SerializedValue> = { big: { kind: "json", value: bigText(200_000) } };
      arm();
      const done = await backend.transitionRun({
        runId: run.id,
        expectedRevision: running.revision,
        to: "Success",
        outputs,
      });
      expect(done).toMatchObject({ state: "Success", revision: running.revision + 1 });
      const fresh = await DynamoDbBackend.open({ table: TABLE, client });
      try {
        expect(await fresh.getRun(run.id)).toMatchObject({ state: "Success", outputs });
      } finally {
        await fresh.close();
      }
    });
  });

  it("counts a claim that landed as claimed when the SDK's retry meets its own write", async () => {
    await withDroppedUpdate(async ({ backend, project, arm }) => {
      const { run } = await backend.createRun({ project, flow: "etl", labels: [project] });
      arm();
      const claimed = await backend.claimRuns({ agentId: "agent-x", labels: [project], limit: 1, leaseMs: 60_000 });
      expect(claimed.map((r) => [r.id, r.attempts, r.lease?.owner])).toEqual([[run.id, 1, "agent-x"]]);
    });
  });
});

describe("idempotency keys with a run retention", () => {
  it("expire no later than the runs they name", async () => {
    const { keys } = await import("../../src/keys.js");
    await using t = await setup({ runRetentionDays: 1 });
    await t.backend.createRun({ project: t.project, flow: "etl", idempotencyKey: "evt-1" });
    const key = keys.idempotency(t.project, "etl", "evt-1");
    const item = await rawItem(key.PK as string, key.SK as string);
    expect(item?.expiresAt as number).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 86_400);
  });
});
