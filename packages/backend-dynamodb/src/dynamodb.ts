import { randomUUID } from "node:crypto";
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import {
  type AgentRecord,
  type Backend,
  BackendError,
  type ClaimInput,
  type CreateRunInput,
  checkTransition,
  type FlowSummary,
  type FlowVersionInput,
  type FlowVersionRecord,
  isTerminalRunState,
  type JsonValue,
  type ListRunsInput,
  type LogPage,
  type LogPageInput,
  labelsMatch,
  lostLeaseReason,
  NotFoundError,
  RunConflictError,
  type RunLogRecord,
  type RunRecord,
  type RunState,
  type RunStateChange,
  type SerializedTaskRun,
  TernError,
  type TransitionInput,
} from "@tern/core";
import { type ChunkedRef, type DynamoDbUsage, type Item, TableClient } from "./db.js";
import { ConditionFailed } from "./errors.js";
import { runFromItem } from "./items.js";
import { keys, PK, runIndexKeys, SK } from "./keys.js";
import { claimQuery, listRunsQuery } from "./queries.js";
import * as registry from "./registry.js";
import { claimUpdate, lostLeaseUpdate, statesAllowedBefore, transitionUpdate } from "./run-writes.js";
import { checkTernTable } from "./table.js";
import * as runItems from "./task-runs.js";

/** Options of {@link DynamoDbBackend.open}. Give `client`, or `region`/`endpoint`, never both. */
export interface DynamoDbBackendOptions {
  /** The table, created by tern's CDK stack or by `createTernTable`. */
  readonly table: string;
  /** @default the SDK's region chain (AWS_REGION, the shared config file) */
  readonly region?: string;
  /** Another endpoint, e.g. `http://127.0.0.1:8000` for DynamoDB Local. @default DynamoDB's regional endpoint */
  readonly endpoint?: string;
  /** A client to use instead of one built from `region` and `endpoint`; `close()` leaves it open. */
  readonly client?: DynamoDBClient;
  /**
   * How long an idempotency key keeps naming its run; DynamoDB's TTL deletes it afterwards
   * (within a few days of expiry), and the same key then starts a new run. Capped at
   * `runRetentionDays` when that is set, so a key never names a deleted run.
   * @default 2592000 (30 days)
   */
  readonly idempotencyTtlSeconds?: number;
  /**
   * How long an ended run (its item, with its state history) is kept; DynamoDB's TTL deletes it
   * afterwards. Task runs and log records are not given a TTL.
   * @default kept until deleted
   */
  readonly runRetentionDays?: number;
}

/** Errors of the lifecycle rules (thrown before or instead of a write). */
function isRuleError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "RUN_TRANSITION" || code === "RUN_TERMINAL" || code === "REASON_REQUIRED";
}

/** Newest (runId, revision) → state pairs remembered, to write a transition in one request. */
const KNOWN_STATES_MAX = 10_000;
const TABLE_NAME = /^[a-zA-Z0-9_.-]{3,255}$/;

/**
 * The serverless backend: one on-demand DynamoDB table (single-table design, see the package
 * README). Every run write is a conditional write on the run's revision, claims are conditional
 * updates, and idempotent creates are transactions, so any number of agents and runners in any
 * number of processes or Lambdas share it safely.
 *
 * @example
 * const backend = await DynamoDbBackend.open({ table: "tern", region: "eu-west-1" });
 * try {
 *   const { run } = await backend.createRun({ project: "default", flow: "etl" });
 * } finally {
 *   await backend.close();
 * }
 */
export class DynamoDbBackend implements Backend {
  /** `dynamodb://<table>?region=<region>`, plus `&endpoint=` when one was given. */
  readonly url: string;
  readonly #db: TableClient;
  readonly #client: DynamoDBClient;
  readonly #ownsClient: boolean;
  readonly #idempotencyTtlSeconds: number;
  #runRetentionSeconds: number | undefined;
  /** Revisions are never reused, so a (run, revision) pair names one state forever. */
  readonly #known = new Map<string, { revision: number; state: RunState }>();

  private constructor(db: TableClient, client: DynamoDBClient, ownsClient: boolean, idempotencyTtlSeconds: number) {
    this.url = db.target.url;
    this.#db = db;
    this.#client = client;
    this.#ownsClient = ownsClient;
    this.#idempotencyTtlSeconds = idempotencyTtlSeconds;
  }

  /**
   * Connects to the table and checks that it exists with tern's keys and indexes. A missing
   * table fails with a `BackendError` naming it, its region and how to create it.
   */
  static async open(options: DynamoDbBackendOptions): Promise<DynamoDbBackend> {
    const { table, client: given, endpoint } = options;
    if (typeof table !== "string" || !TABLE_NAME.test(table)) {
      throw new TernError(
        "BACKEND_OPTIONS",
        `DynamoDB backend: table ${JSON.stringify(table)} is not a valid DynamoDB table name (3-255 letters, digits, "_", "-" and ".").`,
      );
    }
    if (given !== undefined && (options.region !== undefined || endpoint !== undefined)) {
      throw new TernError(
        "BACKEND_OPTIONS",
        "DynamoDB backend: give either client, or region/endpoint for the client tern builds, not both.",
      );
    }
    const ttl = options.idempotencyTtlSeconds ?? 30 * 24 * 3600;
    const retention = options.runRetentionDays;
    if (retention !== undefined && !(Number.isInteger(retention) && retention >= 1)) {
      throw new TernError(
        "BACKEND_OPTIONS",
        `DynamoDB backend: runRetentionDays ${retention} must be a whole number of days >= 1 (leave it out to keep runs).`,
      );
    }
    if (!Number.isInteger(ttl) || ttl < 1) {
      throw new TernError(
        "BACKEND_OPTIONS",
        `DynamoDB backend: idempotencyTtlSeconds ${ttl} must be a positive whole number of seconds.`,
      );
    }
    const client = given ?? new DynamoDBClient({ region: options.region, endpoint });
    try {
      let region: string;
      try {
        region = await client.config.region();
      } catch (error) {
        throw new BackendError(
          `DynamoDB backend: no AWS region for table "${table}" (${(error as Error).message}). ` +
            "Add ?region=<region> to the dynamodb:// URL (TERN_BACKEND), pass `region`, or set AWS_REGION.",
          { cause: error },
        );
      }
      const url = `dynamodb://${table}?region=${region}${endpoint === undefined ? "" : `&endpoint=${endpoint}`}`;
      const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
      const db = new TableClient(doc, { url, table, region });
      const described = await db.send<{ Table?: Parameters<typeof checkTernTable>[0] }>(
        new DescribeTableCommand({ TableName: table }),
        "open the table",
        false,
      );
      checkTernTable(described.Table, table, region);
      // A key must not outlive the run it names: with a retention, keys expire with their runs at
      // the latest, and a redelivered event after that starts a new run.
      const keyTtl = retention === undefined ? ttl : Math.min(ttl, retention * 86_400);
      const backend = new DynamoDbBackend(db, client, given === undefined, keyTtl);
      backend.#runRetentionSeconds = retention === undefined ? undefined : retention * 86_400;
      return backend;
    } catch (error) {
      if (given === undefined) client.destroy();
      throw error;
    }
  }

  /** Requests sent and capacity consumed since this backend was opened. */
  get usage(): DynamoDbUsage {
    return { ...this.#db.usage };
  }

  registerFlowVersion(input: FlowVersionInput): Promise<{ version: FlowVersionRecord; status: "new" | "unchanged" }> {
    return registry.registerFlowVersion(this.#db, input);
  }

  getFlowVersion(project: string, flow: string, version?: number): Promise<FlowVersionRecord | undefined> {
    return registry.getFlowVersion(this.#db, project, flow, version);
  }

  /** When an ended run may be deleted by DynamoDB's TTL, if runs are not kept. */
  #expiresAt(nowMs: number): number | undefined {
    return this.#runRetentionSeconds === undefined ? undefined : Math.floor(nowMs / 1000) + this.#runRetentionSeconds;
  }

  annotateFlowVersion(
    project: string,
    flow: string,
    version: number,
    annotations: Readonly<Record<string, JsonValue>>,
  ): Promise<FlowVersionRecord> {
    return registry.annotateFlowVersion(this.#db, project, flow, version, annotations);
  }

  listFlows(project?: string): Promise<FlowSummary[]> {
    return registry.listFlows(this.#db, project);
  }

  async createRun(input: CreateRunInput): Promise<{ run: RunRecord; created: boolean }> {
    const { project, flow, idempotencyKey } = input;
    const version = await this.getFlowVersion(project, flow, input.version);
    if (version === undefined) {
      // The key is checked first, as in SQLite: a repeated event still finds its run.
      const existing = idempotencyKey === undefined ? undefined : await this.#runByKey(project, flow, idempotencyKey);
      if (existing !== undefined) return { run: existing, created: false };
      const which = input.version === undefined ? "has no registered version" : `has no version ${input.version}`;
      throw new NotFoundError(
        "flowVersion",
        `${project}/${flow}@${input.version ?? "latest"}`,
        `Flow "${flow}" in project "${project}" ${which} in ${this.url}. ` +
          "Register it first with `tern register`, or check the project, flow and version names.",
      );
    }
    const now = Date.now();
    const id = randomUUID();
    const parameters = JSON.stringify(input.parameters ?? {});
    const packed = await this.#db.pack(keys.runPk(id), "PAR#", parameters, "create a run");
    const base = {
      id,
      project,
      flow,
      version: version.version,
      state: "Scheduled" as const,
      revision: 1,
      labels: [...(input.labels ?? version.labels)],
      environmentType: version.environmentType,
      ...(packed.ref === undefined ? { parameters } : { parametersRef: packed.ref }),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      scheduledAtMs: input.scheduledAtMs ?? now,
      createdAtMs: now,
      updatedAtMs: now,
      attempts: 0,
      history: [{ state: "Scheduled", atMs: now }],
    };
    const item = { ...keys.run(id), type: "run", ...base, ...runIndexKeys(base) };
    const run = this.#remember(runFromItem(item, { parameters, outputs: undefined }));
    const putRun = {
      TableName: this.#db.table,
      Item: item,
      ConditionExpression: "attribute_not_exists(#pk)",
      ExpressionAttributeNames: { "#pk": PK },
    };
    if (idempotencyKey === undefined) {
      try {
        await this.#db.send(new PutCommand(putRun), "create a run");
      } catch (error) {
        // The SDK retried a put whose response was lost: the item is ours, the run exists.
        if (!(error instanceof ConditionFailed && error.item?.id === id)) throw error;
      }
      return { run, created: true };
    }
    const key = {
      ...keys.idempotency(project, flow, idempotencyKey),
      type: "idempotencyKey",
      project,
      flow,
      key: idempotencyKey,
      runId: id,
      expiresAt: Math.floor(now / 1000) + this.#idempotencyTtlSeconds,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#db.send(
          new TransactWriteCommand({
            TransactItems: [
              { Put: { ...putRun, Item: key, ReturnValuesOnConditionCheckFailure: "ALL_OLD" } },
              { Put: putRun },
            ],
          }),
          "create a run",
        );
        return { run, created: true };
      } catch (error) {
        if (!(error instanceof ConditionFailed)) throw error;
        const existingId = error.reasons[0]?.item?.runId as string | undefined;
        if (existingId !== undefined) {
          await this.#db.deleteChunks(keys.runPk(id), packed.ref, "create a run");
          const existing = await this.getRun(existingId);
          if (existing !== undefined) return { run: existing, created: false };
          throw new BackendError(
            `DynamoDB backend ${this.url}: idempotency key ${JSON.stringify(idempotencyKey)} of flow "${flow}" names run ` +
              `${existingId}, which no longer exists (deleted outside tern, or by a runRetentionDays longer ago than the key's TTL allows). Use another key.`,
          );
        }
        // Another transaction held the key's item: it is either creating this run or gone.
        if (!error.conflictOnly || attempt >= 10) {
          await this.#db.deleteChunks(keys.runPk(id), packed.ref, "create a run");
          throw new BackendError(
            `DynamoDB backend ${this.url}: cannot create a run of flow "${flow}": ${error.message}.`,
            // Lost to concurrent transactions 10 times: a moment later the key's item is free.
            { cause: error, retryable: error.conflictOnly },
          );
        }
        await registry.jitter(attempt);
      }
    }
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const item = await this.#db.get(keys.run(runId), "read a run");
    return item === undefined ? undefined : this.#record(item, "read a run");
  }

  async listRuns(input: ListRunsInput = {}): Promise<RunRecord[]> {
    const limit = Math.max(0, input.limit ?? 100);
    if (limit === 0) return [];
    const { project, flow, state } = input;
    const runs: RunRecord[] = [];
    const pages = this.#db.pages(listRunsQuery(input, limit), "list runs");
    for await (const page of pages) {
      // Indexes are eventually consistent: the runs are read from the table, and checked again.
      const items = new Map((await this.#db.batchGet(page.map(runKey), "list runs")).map((i) => [i.id as string, i]));
      for (const entry of page) {
        const item = items.get((entry[PK] as string).slice("RUN#".length));
        if (item === undefined) continue;
        const run = await this.#record(item, "list runs");
        if ((state ?? run.state) !== run.state || (project ?? run.project) !== run.project) continue;
        if ((flow ?? run.flow) !== run.flow) continue;
        runs.push(run);
        if (runs.length === limit) return runs;
      }
    }
    return runs;
  }

  async getRunHistory(runId: string): Promise<RunStateChange[]> {
    const item = await this.#db.get(keys.run(runId), "read a run's history", ["history"]);
    return ((item?.history ?? []) as RunStateChange[]).map((h) =>
      h.reason === undefined ? { state: h.state, atMs: h.atMs } : { state: h.state, atMs: h.atMs, reason: h.reason },
    );
  }

  async claimRuns(input: ClaimInput): Promise<RunRecord[]> {
    if (input.limit < 1) return [];
    const maxAttempts = input.maxAttempts ?? 3;
    const now = input.nowMs ?? Date.now();
    const claimed: RunRecord[] = [];
    const claimToken = randomUUID();
    const pages = this.#db.pages(claimQuery(now), "claim runs");
    for await (const page of pages) {
      let contended = false;
      for (let i = 0; i < page.length && claimed.length < input.limit; i++) {
        const candidate = page[i] as Item;
        if (!labelsMatch(input.labels, candidate.labels as string[])) continue;
        const runId = (candidate[PK] as string).slice("RUN#".length);
        const revision = candidate.revision as number;
        const attempts = candidate.attempts as number;
        if (attempts >= maxAttempts && candidate.leaseOwner !== undefined) {
          const reason = lostLeaseReason(attempts, candidate.leaseOwner as string);
          await this.#db
            .update(
              keys.run(runId),
              lostLeaseUpdate({ revision, reason, nowMs: now, expiresAtSeconds: this.#expiresAt(now) }),
              "fail a run that lost its lease",
            )
            .catch(ignoreCondition);
          continue;
        }
        const update = claimUpdate({
          revision,
          attempts,
          owner: input.agentId,
          leaseMs: input.leaseMs,
          nowMs: now,
          claimToken,
          ...(input.environmentTypes === undefined ? {} : { environmentTypes: input.environmentTypes }),
        });
        try {
          claimed.push(await this.#record(await this.#db.update(keys.run(runId), update, "claim runs"), "claim runs"));
        } catch (error) {
          // A retry of a claim that landed fails on our own write: the run is ours.
          const mine =
            error instanceof ConditionFailed &&
            error.item?.leaseOwner === input.agentId &&
            error.item.leaseClaim === claimToken &&
            error.item.revision === revision + 1 &&
            error.item.leaseExpiresAtMs === now + input.leaseMs;
          if (mine && error.item !== undefined) {
            claimed.push(await this.#record(error.item, "claim runs"));
            continue;
          }
          ignoreCondition(error);
          // Another agent took it. Claimers all read the same oldest runs, so after a loss this
          // one tries the rest of the page in random order instead of racing for each in turn.
          if (!contended) shuffle(page, i + 1);
          contended = true;
        }
      }
      if (claimed.length >= input.limit) break;
    }
    return claimed;
  }

  async transitionRun(input: TransitionInput): Promise<RunRecord> {
    const { runId, expectedRevision, to, reason } = input;
    if (isTerminalRunState(to) && to !== "Success" && (reason === undefined || reason.trim() === "")) {
      throw new TernError(
        "REASON_REQUIRED",
        `Run ${runId}: a transition to ${to} needs a reason (what happened, for the user). Pass \`reason\`.`,
      );
    }
    const known = this.#known.get(runId);
    let before = known?.revision === expectedRevision ? known.state : undefined;
    if (before !== undefined) checkTransition(runId, before, to);
    const pk = keys.runPk(runId);
    const outputs =
      input.outputs === undefined
        ? undefined
        : await this.#db.pack(pk, "OUT#", JSON.stringify(input.outputs), "update a run");
    const writeToken = randomUUID();
    let landed = false;
    try {
      // At most twice: a first try that assumed the wrong state learns the real one from the failure.
      for (let attempt = 1; ; attempt++) {
        const update = transitionUpdate({
          expectedRevision,
          before: before === undefined ? { changingFrom: statesAllowedBefore(to) } : { exact: before },
          to,
          reason,
          deployment: input.deployment === undefined ? undefined : JSON.stringify(input.deployment),
          outputs:
            outputs === undefined
              ? undefined
              : outputs.ref === undefined
                ? { json: outputs.json }
                : { ref: outputs.ref },
          lease: input.lease,
          expiresAtSeconds: this.#expiresAt(Date.now()),
          nowMs: Date.now(),
          writeToken,
        });
        let item: Item;
        try {
          item = await this.#db.update(keys.run(runId), update, "update a run");
          landed = true;
        } catch (error) {
          if (!(error instanceof ConditionFailed)) throw error;
          const current = error.item;
          if (current === undefined) throw this.#runNotFound(runId);
          if (current.writeToken === writeToken) {
            // The SDK retried a write whose response was lost; the first attempt landed.
            landed = true;
            item = current;
            return await this.#finishTransition(pk, item, outputs, input.outputs !== undefined);
          }
          if (current.revision !== expectedRevision) {
            throw new RunConflictError(runId, expectedRevision, current.revision as number);
          }
          // The revision matched but not the state this write assumed: decide with the real one.
          checkTransition(runId, current.state as RunState, to);
          if (attempt >= 2) throw new RunConflictError(runId, expectedRevision, current.revision as number);
          before = current.state as RunState;
          continue;
        }
        return await this.#finishTransition(pk, item, outputs, input.outputs !== undefined);
      }
    } catch (error) {
      // Chunks of a write that surely did not land are garbage. After any other failure (a lost
      // response the SDK could not retry) the write may have landed: leftover chunks are harmless,
      // deleting chunks the run points to is not.
      const lost = error instanceof RunConflictError || error instanceof NotFoundError || isRuleError(error);
      if (!landed && lost) await this.#db.deleteChunks(pk, outputs?.ref, "update a run");
      throw error;
    }
  }

  /** After a transition landed: drop the outputs it replaced (only when it wrote outputs), read the record. */
  async #finishTransition(
    pk: string,
    item: Item,
    outputs: { json?: string; ref?: ChunkedRef } | undefined,
    wroteOutputs: boolean,
  ): Promise<RunRecord> {
    const previous = item.previousOutputsRef as ChunkedRef | null | undefined;
    if (wroteOutputs && previous != null && previous.prefix !== outputs?.ref?.prefix) {
      await this.#db.deleteChunks(pk, previous, "delete replaced outputs");
    }
    return this.#record(item, "update a run", outputs?.json);
  }

  saveTaskRuns(runId: string, taskRuns: readonly SerializedTaskRun[]): Promise<void> {
    return runItems.saveTaskRuns(this.#db, runId, taskRuns);
  }

  getTaskRuns(runId: string): Promise<SerializedTaskRun[]> {
    return runItems.getTaskRuns(this.#db, runId);
  }

  appendLogs(runId: string, records: readonly RunLogRecord[]): Promise<void> {
    return runItems.appendLogs(this.#db, runId, records);
  }

  getLogs(runId: string): Promise<RunLogRecord[]> {
    return runItems.getLogs(this.#db, runId);
  }

  getLogPage(runId: string, input?: LogPageInput): Promise<LogPage> {
    return runItems.getLogPage(this.#db, runId, input);
  }

  recordAgent(agent: AgentRecord): Promise<void> {
    return registry.recordAgent(this.#db, agent);
  }

  listAgents(): Promise<AgentRecord[]> {
    return registry.listAgents(this.#db);
  }

  async close(): Promise<void> {
    this.#db.close();
    if (this.#ownsClient) this.#client.destroy();
  }

  /** A run item as a record, its chunked values read back (`outputs` when the caller has them). */
  async #record(item: Item, what: string, outputs?: string): Promise<RunRecord> {
    const pk = item[PK] as string;
    const read = async (inline: unknown, ref: unknown) =>
      ref != null
        ? (await this.#db.readChunks(pk, ref as ChunkedRef, what)).toString()
        : (inline as string | undefined);
    const parameters = (await read(item.parameters, item.parametersRef)) as string;
    const resolvedOutputs = outputs ?? (await read(item.outputs, item.outputsRef));
    return this.#remember(runFromItem(item, { parameters, outputs: resolvedOutputs }));
  }

  #remember(run: RunRecord): RunRecord {
    this.#known.delete(run.id);
    this.#known.set(run.id, { revision: run.revision, state: run.state });
    if (this.#known.size > KNOWN_STATES_MAX) this.#known.delete(this.#known.keys().next().value as string);
    return run;
  }

  async #runByKey(project: string, flow: string, key: string): Promise<RunRecord | undefined> {
    const item = await this.#db.get(keys.idempotency(project, flow, key), "read an idempotency key");
    return item === undefined ? undefined : this.getRun(item.runId as string);
  }

  #runNotFound(runId: string): NotFoundError {
    return new NotFoundError("run", runId, `Run ${runId} does not exist in ${this.url}; check the run id.`);
  }
}

function runKey(entry: Item): Item {
  return { [PK]: entry[PK], [SK]: entry[SK] };
}

/** Rethrows anything but a lost condition (another writer got there first). */
function ignoreCondition(error: unknown): void {
  if (!(error instanceof ConditionFailed)) throw error;
}

/** Shuffles `items` from index `from` on, in place (Fisher-Yates). */
function shuffle(items: unknown[], from: number): void {
  for (let i = items.length - 1; i > from; i--) {
    const j = from + Math.floor(Math.random() * (i - from + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}
