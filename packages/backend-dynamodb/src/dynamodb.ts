import { randomUUID } from "node:crypto";
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { isTernError, NotFoundError, type TernErrorCode } from "@tern/core";
import {
  type AdvancedSchedule,
  type AdvanceScheduleInput,
  type AgentRecord,
  type Backend,
  BackendError,
  type ClaimInput,
  type CreateRunInput,
  checkTransition,
  type FlowSummary,
  type FlowVersionInput,
  type FlowVersionRecord,
  type JsonValue,
  type ListRunsInput,
  type LogPage,
  type LogPageInput,
  RunConflictError,
  type RunLogRecord,
  type RunRecord,
  type RunState,
  type RunStateChange,
  requireEndReason,
  retryWithBackoff,
  type ScheduleState,
  type SerializedTaskRun,
  type TransitionInput,
} from "@tern/core/plugin";
import { claimRuns } from "./claim.js";
import { type ChunkedRef, type DynamoDbUsage, type Item, TableClient } from "./db.js";
import { ConditionFailed } from "./errors.js";
import { runFromItem } from "./items.js";
import { keys, PK, SK } from "./keys.js";
import { newRunItems } from "./new-runs.js";
import { checkBackendOptions, type DynamoDbBackendOptions } from "./options.js";
import { ID_PREFIX_MAX_PAGES, listRunsQuery, runIdPrefixQuery } from "./queries.js";
import * as registry from "./registry.js";
import { statesAllowedBefore, transitionUpdate } from "./run-writes.js";
import { advanceWithRuns } from "./schedule-runs.js";
import * as schedules from "./schedules.js";
import { checkTernTable } from "./table.js";
import * as runItems from "./task-runs.js";

/**
 * Codes of the errors a transition throws before or instead of its write: a lost compare-and-swap,
 * a missing run, and the lifecycle rules.
 */
const UNWRITTEN = new Set<TernErrorCode>([
  "RUN_CONFLICT",
  "NOT_FOUND",
  "RUN_TRANSITION",
  "RUN_TERMINAL",
  "REASON_REQUIRED",
]);

/** Newest (runId, revision) → state pairs remembered, to write a transition in one request. */
const KNOWN_STATES_MAX = 10_000;

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
    const { keyTtlSeconds, runRetentionSeconds } = checkBackendOptions(options);
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
      const backend = new DynamoDbBackend(db, client, given === undefined, keyTtlSeconds);
      backend.#runRetentionSeconds = runRetentionSeconds;
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

  async registerFlowVersion(
    input: FlowVersionInput,
  ): Promise<{ version: FlowVersionRecord; status: "new" | "unchanged" }> {
    const registered = await registry.registerFlowVersion(this.#db, input);
    // After the version, never before: a crash in between leaves the older schedules, which the
    // next registration (new or unchanged) makes follow the newest version.
    await schedules.followSchedules(this.#db, registered.version, input.schedules ?? []);
    return registered;
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
    return registry.annotateFlowVersion(this.#db, { project, flow, version }, annotations);
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
      throw NotFoundError.unregistered(project, flow, input.version, this.url);
    }
    const now = Date.now();
    const id = randomUUID();
    const parameters = JSON.stringify(input.parameters ?? {});
    const packed = await this.#db.pack(keys.runPk(id), "PAR#", parameters, "create a run");
    const { item, putRun, putKey } = newRunItems({
      table: this.#db.table,
      id,
      nowMs: now,
      run: input,
      version,
      parameters,
      ...(packed.ref === undefined ? {} : { parametersRef: packed.ref }),
      idempotencyTtlSeconds: this.#idempotencyTtlSeconds,
    });
    const run = this.#remember(runFromItem(item, { parameters, outputs: undefined }));
    if (putKey === undefined) {
      try {
        await this.#db.send(new PutCommand(putRun), "create a run");
      } catch (error) {
        // The SDK retried a put whose response was lost: the item is ours, the run exists.
        if (!(error instanceof ConditionFailed && error.item?.id === id)) throw error;
      }
      return { run, created: true };
    }
    try {
      return await retryWithBackoff(
        {
          attempts: 10,
          baseMs: 10,
          capMs: 200,
          // Another transaction held the key's item: it is either creating this run or gone.
          retryable: (error) =>
            error instanceof ConditionFailed && error.conflictOnly && error.reasons[0]?.item?.runId === undefined,
          exhausted: (error) => error,
        },
        async () => {
          await this.#db.send(
            new TransactWriteCommand({ TransactItems: [{ Put: putKey }, { Put: putRun }] }),
            "create a run",
          );
          return { run, created: true };
        },
      );
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      await this.#db.deleteChunks(keys.runPk(id), packed.ref, "create a run");
      const existingId = error.reasons[0]?.item?.runId as string | undefined;
      if (existingId === undefined) {
        throw new BackendError(
          `DynamoDB backend ${this.url}: cannot create a run of flow "${flow}": ${error.message}.`,
          // Lost to concurrent transactions 10 times: a moment later the key's item is free.
          { cause: error, retryable: error.conflictOnly },
        );
      }
      const existing = await this.getRun(existingId);
      if (existing !== undefined) return { run: existing, created: false };
      throw new BackendError(
        `DynamoDB backend ${this.url}: idempotency key ${JSON.stringify(idempotencyKey)} of flow "${flow}" names run ` +
          `${existingId}, which no longer exists (deleted outside tern, or by a runRetentionDays longer ago than the key's TTL allows). Use another key.`,
      );
    }
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const item = await this.#db.get(keys.run(runId), "read a run");
    return item === undefined ? undefined : this.#record(item, "read a run");
  }

  /**
   * Looks through the newest `RUN_ID_PREFIX_SEARCH_LIMIT` runs only (the table has no index by id
   * prefix): an older run is found by its full id.
   */
  async findRunIds(prefix: string, limit: number): Promise<string[]> {
    if (prefix === "" || limit < 1) return [];
    const ids: string[] = [];
    let pages = 0;
    for await (const page of this.#db.pages(runIdPrefixQuery(prefix), "find runs by id prefix")) {
      for (const entry of page) ids.push((entry[PK] as string).slice(keys.runPk("").length));
      if (ids.length >= limit || ++pages >= ID_PREFIX_MAX_PAGES) break;
    }
    return ids.sort().slice(0, limit);
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

  claimRuns(input: ClaimInput): Promise<RunRecord[]> {
    return claimRuns(this.#db, input, {
      record: (item) => this.#record(item, "claim runs"),
      expiresAt: (nowMs) => this.#expiresAt(nowMs),
    });
  }

  async transitionRun(input: TransitionInput): Promise<RunRecord> {
    const { runId, expectedRevision, to, reason } = input;
    requireEndReason(runId, to, reason);
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
          if (current === undefined) throw NotFoundError.run(runId, this.url);
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
      const lost = isTernError(error) && UNWRITTEN.has(error.code);
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

  listDueSchedules(input: { readonly untilMs: number; readonly limit: number }): Promise<ScheduleState[]> {
    return schedules.listDueSchedules(this.#db, input.untilMs, input.limit);
  }

  listSchedules(project?: string): Promise<ScheduleState[]> {
    return schedules.listSchedules(this.#db, project);
  }

  async advanceSchedule(input: AdvanceScheduleInput): Promise<AdvancedSchedule> {
    const runs = input.runs;
    if (runs === undefined || runs.ticks.length === 0) {
      return { advanced: await schedules.advanceSchedule(this.#db, input), created: [] };
    }
    const version = await this.getFlowVersion(input.project, input.flow, runs.version);
    if (version === undefined) throw NotFoundError.unregistered(input.project, input.flow, runs.version, this.url);
    return advanceWithRuns(
      { ...input, runs },
      {
        db: this.#db,
        version,
        idempotencyTtlSeconds: this.#idempotencyTtlSeconds,
        createRun: (run) => this.createRun(run),
        record: (item, parameters) => this.#remember(runFromItem(item, { parameters, outputs: undefined })),
      },
    );
  }

  setSchedulesPaused(project: string, flow: string, paused: boolean): Promise<number> {
    return schedules.setSchedulesPaused(this.#db, project, flow, paused);
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
}

function runKey(entry: Item): Item {
  return { [PK]: entry[PK], [SK]: entry[SK] };
}
