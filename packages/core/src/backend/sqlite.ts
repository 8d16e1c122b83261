import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { BackendError, NotFoundError, RunConflictError, TernError } from "../errors.js";
import type { JsonValue, SerializedTaskRun } from "../runner/serialized.js";
import { scheduleRunInputs } from "../schedule/runs.js";
import { openSqliteFile, SqliteConnection } from "./sqlite-connection.js";
import * as schedules from "./sqlite-schedules.js";
import { type Row, toAgent, toFlowVersion, toRun, toRunStateChange } from "./sqlite-schema.js";
import type {
  AdvancedSchedule,
  AdvanceScheduleInput,
  AgentRecord,
  Backend,
  ClaimInput,
  CreateRunInput,
  FlowSummary,
  FlowVersionInput,
  FlowVersionRecord,
  ListRunsInput,
  LogPage,
  LogPageInput,
  RunLogRecord,
  RunRecord,
  RunState,
  RunStateChange,
  ScheduleState,
  TransitionInput,
} from "./types.js";
import {
  checkAnnotations,
  checkLogPageInput,
  checkTransition,
  environmentMatches,
  labelsMatch,
  lostLeaseReason,
  requireEndReason,
} from "./types.js";

/** Options of {@link SqliteBackend.open}. */
export interface SqliteBackendOptions {
  /** The database file; created with its parent directories when missing. */
  readonly path: string;
}

/** How long a write waits for another process's lock before failing. */
const BUSY_TIMEOUT_MS = 5000;
/** Candidates read per step while claiming, so mismatched runs at the head cannot starve others. */
const CLAIM_PAGE_SIZE = 100;

/**
 * The embedded backend: one SQLite file, safe to share between processes on one machine (WAL,
 * a busy timeout, and IMMEDIATE transactions around every read-then-write). better-sqlite3 is
 * synchronous, so a call blocks the event loop while it waits for another process's lock (at
 * most 5 s); the methods are async only to fit {@link Backend}.
 *
 * @example
 * const backend = await SqliteBackend.open({ path: join(ternHome(), "state.db") });
 * try {
 *   const { run } = await backend.createRun({ project: "default", flow: "etl" });
 * } finally {
 *   await backend.close();
 * }
 */
export class SqliteBackend implements Backend {
  /** `sqlite://` followed by the file's absolute path. */
  readonly url: string;
  readonly #sql: SqliteConnection;

  private constructor(db: BetterSqlite3.Database, path: string) {
    this.url = `sqlite://${path}`;
    this.#sql = new SqliteConnection(db, this.url, BUSY_TIMEOUT_MS);
  }

  /**
   * Opens (creating when missing) the database at `options.path` and brings its schema up to date.
   * Fails with a {@link BackendError} naming the path when the file cannot be opened or written.
   */
  static async open(options: SqliteBackendOptions): Promise<SqliteBackend> {
    const path = resolve(options.path);
    return new SqliteBackend(await openSqliteFile(path, BUSY_TIMEOUT_MS), path);
  }

  async registerFlowVersion(
    input: FlowVersionInput,
  ): Promise<{ version: FlowVersionRecord; status: "new" | "unchanged" }> {
    return this.#sql.write("register a flow version", () => {
      const newest = this.#versionRow(input.project, input.flow);
      const now = Date.now();
      if (newest !== undefined && newest.manifest_hash === input.manifestHash) {
        const version = toFlowVersion(newest);
        schedules.followSchedules(this.#sql, version, input.schedules ?? [], now);
        return { version, status: "unchanged" as const };
      }
      const row = this.#sql.get(
        `INSERT INTO flow_versions (project, flow, version, labels, storage, location, manifest_hash,
           environment_type, created_at_ms, source)
         VALUES (@project, @flow, @version, @labels, @storage, @location, @manifestHash, @environmentType, @now, @source)
         RETURNING *`,
        {
          project: input.project,
          flow: input.flow,
          version: newest === undefined ? 1 : (newest.version as number) + 1,
          labels: JSON.stringify(input.labels),
          storage: JSON.stringify(input.storage),
          location: input.location,
          manifestHash: input.manifestHash,
          environmentType: input.environmentType,
          now,
          source: input.source === undefined ? null : JSON.stringify(input.source),
        },
      );
      const version = toFlowVersion(row!);
      schedules.followSchedules(this.#sql, version, input.schedules ?? [], now);
      return { version, status: "new" as const };
    });
  }

  async getFlowVersion(project: string, flow: string, version?: number): Promise<FlowVersionRecord | undefined> {
    return this.#sql.read("read a flow version", () => {
      const row = this.#versionRow(project, flow, version);
      return row === undefined ? undefined : toFlowVersion(row);
    });
  }

  async annotateFlowVersion(
    project: string,
    flow: string,
    version: number,
    annotations: Readonly<Record<string, JsonValue>>,
  ): Promise<FlowVersionRecord> {
    const patch = checkAnnotations(annotations);
    return this.#sql.write("annotate a flow version", () => {
      const row = this.#versionRow(project, flow, version);
      if (row === undefined) throw NotFoundError.flowVersion(project, flow, version, this.url);
      const current = typeof row.annotations === "string" ? (JSON.parse(row.annotations) as object) : {};
      const updated = this.#sql.get(
        `UPDATE flow_versions SET annotations = @annotations
         WHERE project = @project AND flow = @flow AND version = @version RETURNING *`,
        { project, flow, version, annotations: JSON.stringify({ ...current, ...patch }) },
      );
      return toFlowVersion(updated!);
    });
  }

  async listFlows(project?: string): Promise<FlowSummary[]> {
    return this.#sql.read("list flows", () =>
      this.#sql
        .all(
          `SELECT v.* FROM flow_versions v
           JOIN (SELECT project, flow, MAX(version) AS version FROM flow_versions
                 WHERE @project IS NULL OR project = @project GROUP BY project, flow) newest
             USING (project, flow, version)
         ORDER BY v.project, v.flow`,
          { project: project ?? null },
        )
        .map((row) => {
          const v = toFlowVersion(row);
          const { project, flow, version, labels, environmentType, createdAtMs, source } = v;
          const summary = { project, flow, latestVersion: version, labels, environmentType, updatedAtMs: createdAtMs };
          return source === undefined ? summary : { ...summary, source };
        }),
    );
  }

  async createRun(input: CreateRunInput): Promise<{ run: RunRecord; created: boolean }> {
    return this.#sql.write("create a run", () => this.#insertRun(input));
  }

  /** `createRun`, inside the caller's write transaction. */
  #insertRun(input: CreateRunInput): { run: RunRecord; created: boolean } {
    const { project, flow, idempotencyKey } = input;
    if (idempotencyKey !== undefined) {
      const existing = this.#sql.get("SELECT * FROM runs WHERE project = ? AND flow = ? AND idempotency_key = ?", [
        project,
        flow,
        idempotencyKey,
      ]);
      if (existing !== undefined) return { run: toRun(existing), created: false };
    }
    const version = this.#versionRow(project, flow, input.version);
    if (version === undefined) {
      throw NotFoundError.unregistered(project, flow, input.version, this.url);
    }
    const now = Date.now();
    // The IMMEDIATE transaction already serialises this check-then-insert across processes;
    // UNIQUE (project, flow, idempotency_key) is the guarantee should that ever change.
    const row = this.#sql.get(
      `INSERT INTO runs (id, project, flow, version, state, revision, labels, parameters, idempotency_key,
         scheduled_at_ms, created_at_ms, updated_at_ms, attempts, environment_type)
       VALUES (@id, @project, @flow, @version, 'Scheduled', 1, @labels, @parameters, @idempotencyKey,
         @scheduledAtMs, @now, @now, 0, @environmentType)
       RETURNING *`,
      {
        id: randomUUID(),
        project,
        flow,
        version: version.version,
        labels: input.labels === undefined ? version.labels : JSON.stringify(input.labels),
        parameters: JSON.stringify(input.parameters ?? {}),
        idempotencyKey: idempotencyKey ?? null,
        scheduledAtMs: input.scheduledAtMs ?? now,
        now,
        environmentType: version.environment_type,
      },
    )!;
    this.#appendHistory(row.id as string, "Scheduled", now, undefined);
    return { run: toRun(row), created: true };
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    return this.#sql.read("read a run", () => {
      const row = this.#sql.get("SELECT * FROM runs WHERE id = ?", [runId]);
      return row === undefined ? undefined : toRun(row);
    });
  }

  async findRunIds(prefix: string, limit: number): Promise<string[]> {
    if (prefix === "" || limit < 1) return [];
    return this.#sql.read("find runs by id prefix", () =>
      this.#sql
        // A range on the primary key, not LIKE: ids hold no wildcards to escape, and the range
        // uses the key's index (LIKE is case-insensitive, which the index is not).
        .all("SELECT id FROM runs WHERE id >= @prefix AND id < @end ORDER BY id LIMIT @limit", {
          prefix,
          end: `${prefix}\u{10FFFF}`,
          limit,
        })
        .map((row) => row.id as string),
    );
  }

  async listRuns(input: ListRunsInput = {}): Promise<RunRecord[]> {
    return this.#sql.read("list runs", () => {
      // Only the given filters go into the SQL, so that SQLite can use the (project, flow) index.
      const filters = { project: input.project, flow: input.flow, state: input.state };
      const where = Object.entries(filters)
        .filter(([, value]) => value !== undefined)
        .map(([column]) => `${column} = @${column}`);
      return this.#sql
        .all(
          // rowid breaks ties between runs created in the same millisecond, in creation order.
          `SELECT * FROM runs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY created_at_ms DESC, rowid DESC LIMIT @limit`,
          { ...filters, limit: Math.max(0, input.limit ?? 100) },
        )
        .map(toRun);
    });
  }

  async getRunHistory(runId: string): Promise<RunStateChange[]> {
    return this.#sql.read("read a run's history", () =>
      this.#sql.all("SELECT * FROM run_history WHERE run_id = ? ORDER BY seq", [runId]).map(toRunStateChange),
    );
  }

  async claimRuns(input: ClaimInput): Promise<RunRecord[]> {
    if (input.limit < 1) return [];
    const maxAttempts = input.maxAttempts ?? 3;
    return this.#sql.write("claim runs", () => {
      const now = input.nowMs ?? Date.now();
      const claimed: RunRecord[] = [];
      let after = { scheduledAtMs: Number.MIN_SAFE_INTEGER, id: "" };
      while (claimed.length < input.limit) {
        const candidates = this.#sql.all(
          `SELECT id, labels, scheduled_at_ms, attempts, lease_owner, environment_type FROM runs
           WHERE state = 'Scheduled' AND scheduled_at_ms <= @now
             AND (lease_owner IS NULL OR lease_expires_at_ms <= @now)
             AND (scheduled_at_ms, id) > (@scheduledAtMs, @id)
           ORDER BY scheduled_at_ms, id LIMIT @page`,
          { now, ...after, page: CLAIM_PAGE_SIZE },
        );
        for (const candidate of candidates) {
          if (claimed.length === input.limit) break;
          if (!labelsMatch(input.labels, JSON.parse(candidate.labels as string) as string[])) continue;
          if (!environmentMatches(input.environmentTypes, candidate.environment_type)) continue;
          if ((candidate.attempts as number) >= maxAttempts && candidate.lease_owner !== null) {
            const reason = lostLeaseReason(candidate.attempts as number, candidate.lease_owner as string);
            this.#sql.run(
              `UPDATE runs SET state = 'Failed', reason = @reason, lease_owner = NULL, lease_expires_at_ms = NULL,
                 revision = revision + 1, updated_at_ms = @now WHERE id = @id`,
              { reason, now, id: candidate.id },
            );
            this.#appendHistory(candidate.id as string, "Failed", now, reason);
            continue;
          }
          const row = this.#sql.get(
            `UPDATE runs SET lease_owner = @owner, lease_expires_at_ms = @expiresAtMs, attempts = attempts + 1,
               revision = revision + 1, updated_at_ms = @now
             WHERE id = @id RETURNING *`,
            { owner: input.agentId, expiresAtMs: now + input.leaseMs, now, id: candidate.id },
          )!;
          claimed.push(toRun(row));
        }
        const last = candidates.at(-1);
        if (candidates.length < CLAIM_PAGE_SIZE || last === undefined) break;
        after = { scheduledAtMs: last.scheduled_at_ms as number, id: last.id as string };
      }
      return claimed;
    });
  }

  async transitionRun(input: TransitionInput): Promise<RunRecord> {
    const { runId, expectedRevision, to, reason, lease } = input;
    requireEndReason(runId, to, reason);
    return this.#sql.write("update a run", () => {
      const now = Date.now();
      const before = this.#sql.get("SELECT state, revision, reason FROM runs WHERE id = ?", [runId]);
      if (before !== undefined && before.revision === expectedRevision) {
        checkTransition(runId, before.state as RunState, to);
      }
      // A write that keeps the state (deployment details, outputs) keeps its reason unless given one.
      const keepReason = before !== undefined && before.state === to && reason === undefined;
      // Compare-and-swap on the revision; a NULL parameter keeps the column, except that the
      // lease is replaced whenever `lease` is given, since `null` clears it.
      const row = this.#sql.get(
        `UPDATE runs SET state = @to, reason = @reason, revision = revision + 1, updated_at_ms = @now,
           deployment = COALESCE(@deployment, deployment), outputs = COALESCE(@outputs, outputs),
           lease_owner = CASE WHEN @setLease THEN @leaseOwner ELSE lease_owner END,
           lease_expires_at_ms = CASE WHEN @setLease THEN @leaseExpiresAtMs ELSE lease_expires_at_ms END
         WHERE id = @runId AND revision = @expectedRevision AND state NOT IN ('Success', 'Failed', 'Cancelled')
         RETURNING *`,
        {
          to,
          reason: keepReason ? ((before?.reason as string | null) ?? null) : (reason ?? null),
          now,
          deployment: input.deployment === undefined ? null : JSON.stringify(input.deployment),
          outputs: input.outputs === undefined ? null : JSON.stringify(input.outputs),
          setLease: lease === undefined ? 0 : 1,
          leaseOwner: lease?.owner ?? null,
          leaseExpiresAtMs: lease?.expiresAtMs ?? null,
          runId,
          expectedRevision,
        },
      );
      if (row === undefined) {
        if (before === undefined) throw NotFoundError.run(runId, this.url);
        if (before.revision !== expectedRevision) {
          throw new RunConflictError(runId, expectedRevision, before.revision as number);
        }
        throw new TernError(
          "RUN_TERMINAL",
          `Run ${runId} is already ${before.state as string}, a final state; it cannot move to ${to}. ` +
            "Start a new run instead.",
        );
      }
      if (before?.state !== to) this.#appendHistory(runId, to, now, reason);
      return toRun(row);
    });
  }

  async saveTaskRuns(runId: string, taskRuns: readonly SerializedTaskRun[]): Promise<void> {
    return this.#sql.write("save task runs", () => {
      this.#requireRun(runId);
      for (const taskRun of taskRuns) {
        // `ord` is set on first insert only, so a re-saved task run keeps its place.
        this.#sql.run(
          `INSERT INTO task_runs (run_id, id, ord, body)
           VALUES (@runId, @id, (SELECT COALESCE(MAX(ord), 0) + 1 FROM task_runs WHERE run_id = @runId), @body)
           ON CONFLICT (run_id, id) DO UPDATE SET body = excluded.body`,
          { runId, id: taskRun.id, body: JSON.stringify(taskRun) },
        );
      }
    });
  }

  async getTaskRuns(runId: string): Promise<SerializedTaskRun[]> {
    return this.#sql.read("read task runs", () =>
      this.#sql
        .all("SELECT body FROM task_runs WHERE run_id = ? ORDER BY ord", [runId])
        .map((row) => JSON.parse(row.body as string) as SerializedTaskRun),
    );
  }

  async appendLogs(runId: string, records: readonly RunLogRecord[]): Promise<void> {
    const rows = records.map(({ taskRunId, ...body }) => {
      try {
        return [runId, taskRunId, JSON.stringify(body)];
      } catch (error) {
        throw new BackendError(
          `SQLite backend ${this.url}: a log record of task run ${taskRunId} cannot be stored as JSON ` +
            `(${(error as Error).message}). Log JSON-safe fields, e.g. through serializeTaskRun.`,
          { cause: error },
        );
      }
    });
    return this.#sql.write("append logs", () => {
      this.#requireRun(runId);
      for (const row of rows) this.#sql.run("INSERT INTO logs (run_id, task_run_id, body) VALUES (?, ?, ?)", row);
    });
  }

  async getLogs(runId: string): Promise<RunLogRecord[]> {
    return this.#sql.read("read logs", () =>
      this.#sql.all("SELECT task_run_id, body FROM logs WHERE run_id = ? ORDER BY seq", [runId]).map((row) => ({
        ...(JSON.parse(row.body as string) as Omit<RunLogRecord, "taskRunId">),
        taskRunId: row.task_run_id as string,
      })),
    );
  }

  async getLogPage(runId: string, input?: LogPageInput): Promise<LogPage> {
    const { afterSeq, limit } = checkLogPageInput(input);
    return this.#sql.read("read logs", () => {
      // One row more than asked tells whether another page follows.
      const rows = this.#sql.all(
        "SELECT seq, task_run_id, body FROM logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        [runId, afterSeq, limit + 1],
      );
      const page = rows.slice(0, limit);
      const records = page.map((row) => ({
        ...(JSON.parse(row.body as string) as Omit<RunLogRecord, "taskRunId">),
        taskRunId: row.task_run_id as string,
      }));
      return rows.length > limit ? { records, next: String(page.at(-1)!.seq) } : { records };
    });
  }

  async listDueSchedules(input: { readonly untilMs: number; readonly limit: number }): Promise<ScheduleState[]> {
    return this.#sql.read("list due schedules", () =>
      schedules.listDueSchedules(this.#sql, input.untilMs, input.limit),
    );
  }

  async listSchedules(project?: string): Promise<ScheduleState[]> {
    return this.#sql.read("list schedules", () => schedules.listSchedules(this.#sql, project));
  }

  async advanceSchedule(input: AdvanceScheduleInput): Promise<AdvancedSchedule> {
    return this.#sql.write("advance a schedule", () => {
      if (!schedules.advanceSchedule(this.#sql, input)) return { advanced: false, created: [] };
      const runs = input.runs;
      if (runs === undefined || runs.ticks.length === 0) return { advanced: true, created: [] };
      const version = this.#versionRow(input.project, input.flow, runs.version);
      if (version === undefined) throw NotFoundError.unregistered(input.project, input.flow, runs.version, this.url);
      const created: RunRecord[] = [];
      for (const run of scheduleRunInputs(input, runs, JSON.parse(version.labels as string) as string[])) {
        const inserted = this.#insertRun(run);
        if (inserted.created) created.push(inserted.run);
      }
      return { advanced: true, created };
    });
  }

  async setSchedulesPaused(project: string, flow: string, paused: boolean): Promise<number> {
    return this.#sql.write("pause or resume schedules", () =>
      schedules.setSchedulesPaused(this.#sql, project, flow, paused),
    );
  }

  async recordAgent(agent: AgentRecord): Promise<void> {
    return this.#sql.write("record an agent", () => {
      this.#sql.run(
        `INSERT INTO agents (id, labels, last_seen_at_ms, stopped_at_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET labels = excluded.labels, last_seen_at_ms = excluded.last_seen_at_ms,
           stopped_at_ms = excluded.stopped_at_ms`,
        [agent.id, JSON.stringify(agent.labels), agent.lastSeenAtMs, agent.stoppedAtMs ?? null],
      );
    });
  }

  async listAgents(): Promise<AgentRecord[]> {
    return this.#sql.read("list agents", () =>
      this.#sql.all("SELECT * FROM agents ORDER BY last_seen_at_ms DESC, id").map(toAgent),
    );
  }

  async close(): Promise<void> {
    this.#sql.close();
  }

  /** The row of `version`, or of the newest version when it is omitted. */
  #versionRow(project: string, flow: string, version?: number): Row | undefined {
    return this.#sql.get(
      `SELECT * FROM flow_versions WHERE project = @project AND flow = @flow
         AND (@version IS NULL OR version = @version)
       ORDER BY version DESC LIMIT 1`,
      { project, flow, version: version ?? null },
    );
  }

  #requireRun(runId: string): void {
    if (this.#sql.get("SELECT 1 FROM runs WHERE id = ?", [runId]) === undefined)
      throw NotFoundError.run(runId, this.url);
  }

  #appendHistory(runId: string, state: RunState, atMs: number, reason: string | undefined): void {
    this.#sql.run(
      `INSERT INTO run_history (run_id, seq, state, at_ms, reason)
       VALUES (@runId, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_history WHERE run_id = @runId), @state, @atMs, @reason)`,
      { runId, state, atMs, reason: reason ?? null },
    );
  }
}
