import type BetterSqlite3 from "better-sqlite3";
import { BackendError } from "../errors.js";
import type { AgentRecord, FlowSource, FlowVersionRecord, RunRecord, RunState, RunStateChange } from "./types.js";

/** A row as better-sqlite3 returns it. */
export type Row = Record<string, unknown>;

/**
 * The schema version this code writes, kept in `PRAGMA user_version`. `MIGRATIONS[i]` takes a
 * database from version `i` to `i + 1`; append a step (never edit a shipped one) to change it.
 */
export const SQLITE_SCHEMA_VERSION = 5;

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE flow_versions (
    project TEXT NOT NULL,
    flow TEXT NOT NULL,
    version INTEGER NOT NULL,
    labels TEXT NOT NULL,
    storage TEXT NOT NULL,
    location TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    environment_type TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (project, flow, version)
  );

  CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    flow TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    revision INTEGER NOT NULL,
    labels TEXT NOT NULL,
    parameters TEXT NOT NULL,
    idempotency_key TEXT,
    scheduled_at_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires_at_ms INTEGER,
    deployment TEXT,
    outputs TEXT,
    UNIQUE (project, flow, idempotency_key),
    FOREIGN KEY (project, flow, version) REFERENCES flow_versions (project, flow, version)
  );
  CREATE INDEX runs_claim ON runs (state, scheduled_at_ms, id);
  CREATE INDEX runs_list ON runs (project, flow, created_at_ms);
  CREATE INDEX runs_created ON runs (created_at_ms);

  CREATE TABLE run_history (
    run_id TEXT NOT NULL REFERENCES runs (id),
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (run_id, seq)
  );

  CREATE TABLE task_runs (
    run_id TEXT NOT NULL REFERENCES runs (id),
    id TEXT NOT NULL,
    ord INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, id)
  );

  CREATE TABLE logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (id),
    task_run_id TEXT NOT NULL,
    body TEXT NOT NULL
  );
  CREATE INDEX logs_run ON logs (run_id, seq);

  CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    labels TEXT NOT NULL,
    last_seen_at_ms INTEGER NOT NULL,
    stopped_at_ms INTEGER
  );
  `,
  // 1 -> 2: what environments remember about a flow version (a task definition's ARN).
  `ALTER TABLE flow_versions ADD COLUMN annotations TEXT;`,
  // 2 -> 3: each run's environment type, so that agents claim only runs they can deploy.
  `ALTER TABLE runs ADD COLUMN environment_type TEXT;
   UPDATE runs SET environment_type = (
     SELECT v.environment_type FROM flow_versions v
     WHERE v.project = runs.project AND v.flow = runs.flow AND v.version = runs.version);`,
  // 3 -> 4: the schedules of flows' newest versions, by next tick for agents' polls.
  `CREATE TABLE schedules (
    project TEXT NOT NULL,
    flow TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    covered_until_ms INTEGER NOT NULL,
    next_tick_ms INTEGER NOT NULL,
    paused INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (project, flow, name)
  );
  CREATE INDEX schedules_due ON schedules (paused, next_tick_ms);`,
  // 4 -> 5: the Git checkout a flow version was registered from (JSON; NULL: none recorded).
  `ALTER TABLE flow_versions ADD COLUMN source TEXT;`,
];

/**
 * Brings the database at `path` to {@link SQLITE_SCHEMA_VERSION}. Runs in an IMMEDIATE
 * transaction, so processes opening a new file at the same time create the tables once.
 */
export function migrateSqliteSchema(db: BetterSqlite3.Database, path: string): void {
  db.transaction(() => {
    const current = db.pragma("user_version", { simple: true }) as number;
    if (current > SQLITE_SCHEMA_VERSION) {
      throw new BackendError(
        `SQLite backend ${path}: the database has schema version ${current}, newer than the ` +
          `${SQLITE_SCHEMA_VERSION} this tern understands. Upgrade tern, or point TERN_HOME at another directory.`,
      );
    }
    for (let version = current; version < SQLITE_SCHEMA_VERSION; version += 1) {
      db.exec(MIGRATIONS[version]!);
    }
    if (current !== SQLITE_SCHEMA_VERSION) db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
  }).immediate();
}

/** The columns `flow_versions` and `runs` share: the flow version a row is of, its labels, its creation. */
function versionColumns(row: Row): Pick<FlowVersionRecord, "project" | "flow" | "version" | "labels" | "createdAtMs"> {
  return {
    project: row.project as string,
    flow: row.flow as string,
    version: row.version as number,
    labels: JSON.parse(row.labels as string) as string[],
    createdAtMs: row.created_at_ms as number,
  };
}

/** A `flow_versions` row as a record. */
export function toFlowVersion(row: Row): FlowVersionRecord {
  return {
    ...versionColumns(row),
    storage: JSON.parse(row.storage as string) as FlowVersionRecord["storage"],
    location: row.location as string,
    manifestHash: row.manifest_hash as string,
    environmentType: row.environment_type as string,
    ...(typeof row.annotations === "string"
      ? { annotations: JSON.parse(row.annotations) as NonNullable<FlowVersionRecord["annotations"]> }
      : {}),
    ...(typeof row.source === "string" ? { source: JSON.parse(row.source) as FlowSource } : {}),
  };
}

/** A `runs` row as a record, without the optional fields that are NULL. The file is written only by
 * `SqliteBackend`, behind a schema version check, so its JSON is trusted. */
export function toRun(row: Row): RunRecord {
  const run: { -readonly [K in keyof RunRecord]: RunRecord[K] } = {
    id: row.id as string,
    ...versionColumns(row),
    state: row.state as RunState,
    revision: row.revision as number,
    parameters: JSON.parse(row.parameters as string) as RunRecord["parameters"],
    scheduledAtMs: row.scheduled_at_ms as number,
    updatedAtMs: row.updated_at_ms as number,
    attempts: row.attempts as number,
    ...(typeof row.environment_type === "string" ? { environmentType: row.environment_type } : {}),
  };
  if (row.reason !== null) run.reason = row.reason as string;
  if (row.idempotency_key !== null) run.idempotencyKey = row.idempotency_key as string;
  if (row.lease_owner !== null) {
    run.lease = { owner: row.lease_owner as string, expiresAtMs: row.lease_expires_at_ms as number };
  }
  if (row.deployment !== null) run.deployment = JSON.parse(row.deployment as string) as RunRecord["deployment"];
  if (row.outputs !== null) run.outputs = JSON.parse(row.outputs as string) as RunRecord["outputs"];
  return run;
}

/** A `run_history` row as a record. */
export function toRunStateChange(row: Row): RunStateChange {
  const change = { state: row.state as RunState, atMs: row.at_ms as number };
  return row.reason === null ? change : { ...change, reason: row.reason as string };
}

/** An `agents` row as a record. */
export function toAgent(row: Row): AgentRecord {
  const agent = {
    id: row.id as string,
    labels: JSON.parse(row.labels as string) as string[],
    lastSeenAtMs: row.last_seen_at_ms as number,
  };
  return row.stopped_at_ms === null || row.stopped_at_ms === undefined
    ? agent
    : { ...agent, stoppedAtMs: row.stopped_at_ms as number };
}
