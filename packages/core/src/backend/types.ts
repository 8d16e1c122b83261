import { TernError } from "../errors.js";
import type { LogRecord } from "../runner/logger.js";
import type { JsonValue, SerializedTaskRun, SerializedValue } from "../runner/serialized.js";
import type { ScheduleSpec } from "../schedule/definition.js";

/** States of a flow run in the backend. */
export type RunState = "Scheduled" | "Submitted" | "Running" | "Success" | "Failed" | "Cancelling" | "Cancelled";

/** States a run never leaves. */
export const TERMINAL_RUN_STATES: readonly RunState[] = ["Success", "Failed", "Cancelled"];

/**
 * The state changes a backend accepts. Writing a run's current state again (to patch its
 * deployment, outputs or lease) is always allowed until it is final; terminal states never change.
 */
export const RUN_TRANSITIONS: Readonly<Record<RunState, readonly RunState[]>> = {
  // Running straight from Scheduled: `tern execute <id>` on a run no agent took.
  Scheduled: ["Submitted", "Running", "Failed", "Cancelled"],
  // Scheduled again: a launch that never started, handed back for another attempt.
  Submitted: ["Running", "Scheduled", "Success", "Failed", "Cancelling", "Cancelled"],
  Running: ["Success", "Failed", "Cancelling", "Cancelled"],
  Cancelling: ["Cancelled", "Failed", "Success"],
  Success: [],
  Failed: [],
  Cancelled: [],
};

/** Refuses a state change {@link RUN_TRANSITIONS} does not allow, naming both states. */
export function checkTransition(runId: string, from: RunState, to: RunState): void {
  if (from === to && !isTerminalRunState(from)) return;
  if (RUN_TRANSITIONS[from].includes(to)) return;
  throw new TernError(
    isTerminalRunState(from) ? "RUN_TERMINAL" : "RUN_TRANSITION",
    isTerminalRunState(from)
      ? `Run ${runId} is already ${from}, a final state; it cannot move to ${to}. Start a new run instead.`
      : `Run ${runId} cannot move from ${from} to ${to}; allowed from ${from}: ${RUN_TRANSITIONS[from].join(", ")}.`,
  );
}

/** Refuses a transition to a failed or cancelled end that does not say why (`reason`). */
export function requireEndReason(runId: string, to: RunState, reason: string | undefined): void {
  if (isTerminalRunState(to) && to !== "Success" && (reason === undefined || reason.trim() === "")) {
    throw new TernError(
      "REASON_REQUIRED",
      `Run ${runId}: a transition to ${to} needs a reason (what happened, for the user). Pass \`reason\`.`,
    );
  }
}

/** Whether a run in `state` is over. */
export function isTerminalRunState(state: RunState): boolean {
  return state === "Success" || state === "Failed" || state === "Cancelled";
}

/** A storage or environment as JSON: its registered type name and JSON-only options. */
export interface TypedConfig {
  readonly type: string;
  readonly options: Readonly<Record<string, JsonValue>>;
}

/**
 * Where a flow version's code came from: the Git checkout its flow file was registered from.
 * Recorded by registration when the file is inside a Git work tree with at least one commit.
 */
export interface FlowSource {
  /**
   * The `origin` remote's URL without user info, password, query or fragment (an scp-like
   * `git@github.com:org/repo.git` as is); absent when the checkout has no `origin`.
   */
  readonly repository?: string;
  /** The checked-out commit (`git rev-parse HEAD`), 40 hex digits (64 in a SHA-256 repository). */
  readonly commit: string;
  /** The flow file, relative to the work tree's root, with `/`. */
  readonly path: string;
  /** Whether the work tree differed from `commit`: changed, staged or untracked files. */
  readonly dirty: boolean;
}

/** One registered version of a flow. */
export interface FlowVersionRecord {
  readonly project: string;
  readonly flow: string;
  /** 1, 2, 3... per (project, flow). */
  readonly version: number;
  readonly labels: readonly string[];
  /** The storage holding the flow's manifest and bundle. */
  readonly storage: TypedConfig;
  /** Key of the manifest in that storage. */
  readonly location: string;
  /** sha256 (hex) of the manifest's bytes. */
  readonly manifestHash: string;
  /** The environment's type name, for listings (the manifest holds its options). */
  readonly environmentType: string;
  readonly createdAtMs: number;
  /**
   * The Git checkout the version was registered from, when there was one. A registration of the
   * same manifest from another commit keeps the version (`unchanged`) and this source.
   */
  readonly source?: FlowSource;
  /**
   * What environments remembered about this version (a task definition's ARN...), by key;
   * written with `annotateFlowVersion`, never part of the manifest.
   */
  readonly annotations?: Readonly<Record<string, JsonValue>>;
}

/** What `registerFlowVersion` needs. */
export type FlowVersionInput = Omit<FlowVersionRecord, "version" | "createdAtMs" | "annotations"> & {
  /** The manifest's schedules (`manifest.flow.schedules`): the backend keeps their state. */
  readonly schedules?: readonly ScheduleSpec[];
};

/**
 * A schedule of a flow's newest version, as the backend keeps it for agents' polls: where its
 * ticks are covered up to, and its next tick, so that a poll reads only the schedules coming due.
 */
export interface ScheduleState {
  readonly project: string;
  readonly flow: string;
  /** The flow version whose manifest holds the schedule. */
  readonly version: number;
  readonly spec: ScheduleSpec;
  /** Every tick up to this instant has its run, or was skipped by the catch-up policy. */
  readonly coveredUntilMs: number;
  /** The first tick after `coveredUntilMs` ({@link NEVER_MS} for none). */
  readonly nextTickMs: number;
  /** Paused schedules create no runs (`tern schedules pause`); kept across new versions. */
  readonly paused: boolean;
  /** Raised by every write: `advanceSchedule` is a compare-and-swap on it. */
  readonly revision: number;
}

/** What `advanceSchedule` writes: the ticks up to `coveredUntilMs` have their runs. */
export interface AdvanceScheduleInput {
  readonly project: string;
  readonly flow: string;
  readonly name: string;
  readonly expectedRevision: number;
  readonly coveredUntilMs: number;
  readonly nextTickMs: number;
  /** The runs of the ticks the advance covers, written with it. @default none */
  readonly runs?: ScheduleRuns;
}

/** The runs of a schedule's ticks, one per tick, all of one flow version with the same values. */
export interface ScheduleRuns {
  readonly version: number;
  readonly parameters: Readonly<Record<string, JsonValue>>;
  /** Added to the flow version's labels. @default none */
  readonly labels?: readonly string[];
  readonly ticks: ReadonlyArray<{ readonly scheduledAtMs: number; readonly idempotencyKey: string }>;
}

/** What `advanceSchedule` did. */
export interface AdvancedSchedule {
  /** False when the revision had moved (another agent advanced it) or the schedule is gone. */
  readonly advanced: boolean;
  /** The runs it created (a tick whose key already named a run gets no second one). */
  readonly created: readonly RunRecord[];
}

/** A flow with its newest version, as `listFlows` returns it. */
export interface FlowSummary {
  readonly project: string;
  readonly flow: string;
  readonly latestVersion: number;
  readonly labels: readonly string[];
  readonly environmentType: string;
  readonly updatedAtMs: number;
  /** The newest version's source, when it has one. */
  readonly source?: FlowSource;
}

/** An agent's claim on a run. */
export interface Lease {
  readonly owner: string;
  readonly expiresAtMs: number;
}

/** One entry of a run's state history. */
export interface RunStateChange {
  readonly state: RunState;
  readonly atMs: number;
  readonly reason?: string;
}

/** A flow run. */
export interface RunRecord {
  readonly id: string;
  readonly project: string;
  readonly flow: string;
  readonly version: number;
  readonly state: RunState;
  /** Human-readable reason of the current state; set on every terminal state. */
  readonly reason?: string;
  /** Increases by one on every write; writes compare-and-swap on it. */
  readonly revision: number;
  /** Fixed at creation: from the flow version unless overridden. */
  readonly labels: readonly string[];
  /** The flow version's environment type, fixed at creation (absent on runs older than tern 0.2). */
  readonly environmentType?: string;
  readonly parameters: Readonly<Record<string, JsonValue>>;
  readonly idempotencyKey?: string;
  /** The run may be claimed from this time on. */
  readonly scheduledAtMs: number;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  /** How many times an agent claimed it. */
  readonly attempts: number;
  readonly lease?: Lease;
  /** Where the run was deployed (process id, ECS task ARN...), set by the environment. */
  readonly deployment?: Readonly<Record<string, JsonValue>>;
  /** The flow's outputs, set by the runner when it finishes. */
  readonly outputs?: Readonly<Record<string, SerializedValue>>;
}

/** What `createRun` needs. */
export interface CreateRunInput {
  readonly project: string;
  readonly flow: string;
  /** @default the newest version */
  readonly version?: number;
  readonly parameters?: Readonly<Record<string, JsonValue>>;
  /** @default the flow version's labels */
  readonly labels?: readonly string[];
  /** A second create with the same key (per project and flow) returns the first run. */
  readonly idempotencyKey?: string;
  /** @default now */
  readonly scheduledAtMs?: number;
}

/**
 * A compare-and-swap state change. The run's `reason`, `deployment` and `outputs` are set with
 * it when given.
 */
export interface TransitionInput extends Pick<RunRecord, "reason" | "deployment" | "outputs"> {
  readonly runId: string;
  /** The revision the caller read; the write fails with `RunConflictError` if it moved. */
  readonly expectedRevision: number;
  readonly to: RunState;
  /** Set with the change; `null` clears the lease. */
  readonly lease?: Lease | null;
}

/** What `claimRuns` needs. */
export interface ClaimInput {
  readonly agentId: string;
  /** The agent's labels: it takes runs whose labels are a subset (none only if it has none). */
  readonly labels: readonly string[];
  readonly limit: number;
  readonly leaseMs: number;
  /**
   * Only runs of these environment types (an agent that launches only Fargate tasks); runs that
   * do not record their type are claimable by any agent. @default every type
   */
  readonly environmentTypes?: readonly string[];
  readonly nowMs?: number;
  /**
   * Claims a run may have. A run whose lease expired this many times (its agents died or hung
   * before deploying it) is not claimed again but ended `Failed`, with a reason that says so.
   * @default 3
   */
  readonly maxAttempts?: number;
}

/** The reason a run gets when it lost its lease `attempts` times. */
export function lostLeaseReason(attempts: number, lastOwner: string | undefined): string {
  return `lost its lease ${attempts} time${attempts === 1 ? "" : "s"}: the agents that claimed it (last: ${lastOwner ?? "unknown"}) stopped or hung before deploying it. Check the agents' logs, then start a new run.`;
}

/** An agent as last seen by the backend. */
export interface AgentRecord {
  readonly id: string;
  readonly labels: readonly string[];
  readonly lastSeenAtMs: number;
  /** Set when the agent stopped on purpose (`stop()`, or the end of `tern agent --once`). */
  readonly stoppedAtMs?: number;
}

/** A log record with the task run it belongs to. */
export interface RunLogRecord extends LogRecord {
  readonly taskRunId: string;
}

/** Options of `getLogPage`. */
export interface LogPageInput {
  /** The `next` of the page before; omitted for the first page. */
  readonly after?: string;
  /** Most records in the page, 1 to {@link MAX_LOG_PAGE_SIZE}. @default {@link DEFAULT_LOG_PAGE_SIZE} */
  readonly limit?: number;
}

/** One page of a run's log records. */
export interface LogPage {
  /** In the order they were appended. A page may hold fewer than `limit` records and still have a `next`. */
  readonly records: RunLogRecord[];
  /** Where the next page starts (pass it as `after`); absent when there is nothing more to read now. */
  readonly next?: string;
}

/** Records per page of `getLogPage` when no limit is given. */
export const DEFAULT_LOG_PAGE_SIZE = 1000;
/** Most records one `getLogPage` call returns. */
export const MAX_LOG_PAGE_SIZE = 10_000;

/**
 * Checks `getLogPage`'s input and resolves its limit and the sequence number to read after (0
 * for the first page). Cursors are decimal sequence numbers in both backends, but callers must
 * treat them as opaque.
 */
export function checkLogPageInput(input: LogPageInput = {}): { afterSeq: number; limit: number } {
  const limit = input.limit ?? DEFAULT_LOG_PAGE_SIZE;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LOG_PAGE_SIZE) {
    throw new TernError(
      "LOG_PAGE",
      `Log page limit ${String(limit)} is out of range; give a whole number from 1 to ${MAX_LOG_PAGE_SIZE}.`,
    );
  }
  if (input.after === undefined) return { afterSeq: 0, limit };
  const afterSeq = /^[0-9]{1,15}$/.test(input.after) ? Number(input.after) : Number.NaN;
  if (!Number.isSafeInteger(afterSeq)) {
    throw new TernError(
      "LOG_PAGE",
      `Log page cursor ${JSON.stringify(input.after)} is not one this backend returned; pass the \`next\` of the previous page, or omit \`after\` to start from the first record.`,
    );
  }
  return { afterSeq, limit };
}

/**
 * A run's log records page by page, in the order they were appended, reading one page of
 * `pageSize` records at a time: memory stays constant however much the run logged.
 *
 * @example
 * for await (const page of logPages(backend, runId)) for (const record of page) print(record);
 */
export async function* logPages(
  backend: Pick<Backend, "getLogPage">,
  runId: string,
  pageSize: number = DEFAULT_LOG_PAGE_SIZE,
): AsyncGenerator<RunLogRecord[]> {
  let after: string | undefined;
  do {
    const page: LogPage = await backend.getLogPage(runId, {
      limit: pageSize,
      ...(after === undefined ? {} : { after }),
    });
    if (page.records.length > 0) yield page.records;
    after = page.next;
  } while (after !== undefined);
}

/** Filters of `listRuns`. */
export interface ListRunsInput {
  readonly project?: string;
  readonly flow?: string;
  readonly state?: RunState;
  /** @default 100 */
  readonly limit?: number;
}

/**
 * The state store: projects, flows and versions, runs with their history, task runs, logs,
 * idempotency keys, leases and agents. Every run write is a compare-and-swap on its revision,
 * so two agents can never both launch one run. Implementations: SQLite (embedded), DynamoDB.
 */
export interface Backend {
  /** A URL naming this backend, for messages (`sqlite:///path`, `dynamodb://table`). */
  readonly url: string;

  /**
   * Records a version unless the newest one has the same manifest hash. Either way, the flow's
   * schedule states then follow `input.schedules`: a schedule kept with the same version and
   * definition keeps its state, a new or changed one starts covered up to now, one no longer
   * given is removed; a paused flow stays paused.
   */
  registerFlowVersion(input: FlowVersionInput): Promise<{ version: FlowVersionRecord; status: "new" | "unchanged" }>;
  /** A version, or the newest one when `version` is omitted; `undefined` when none. */
  getFlowVersion(project: string, flow: string, version?: number): Promise<FlowVersionRecord | undefined>;
  listFlows(project?: string): Promise<FlowSummary[]>;
  /**
   * Sets annotations on a version: each key given replaces that key, others stay. Resolves the
   * updated version; a version that does not exist is a `NotFoundError`.
   */
  annotateFlowVersion(
    project: string,
    flow: string,
    version: number,
    annotations: Readonly<Record<string, JsonValue>>,
  ): Promise<FlowVersionRecord>;

  /** Creates a `Scheduled` run, or returns the run its idempotency key already names. */
  createRun(input: CreateRunInput): Promise<{ run: RunRecord; created: boolean }>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /**
   * Ids of runs that begin with `prefix`, at most `limit`, for commands that take a short id
   * (`tern runs show 9dc431b6`), in id order. A backend with no index by id prefix may look
   * through a bounded number of its newest runs only (DynamoDB: 10,000), and documents it.
   */
  findRunIds(prefix: string, limit: number): Promise<string[]>;
  /** Newest first. */
  listRuns(input?: ListRunsInput): Promise<RunRecord[]>;
  getRunHistory(runId: string): Promise<RunStateChange[]>;
  /**
   * Leases up to `limit` runs that are `Scheduled`, due, whose labels the agent satisfies, and
   * that have no live lease (an expired lease can be taken over). Raises each run's `attempts`;
   * a run whose lease expired `maxAttempts` times is ended `Failed` instead (`lostLeaseReason`).
   */
  claimRuns(input: ClaimInput): Promise<RunRecord[]>;
  /** Compare-and-swap state change; throws `RunConflictError` when the revision moved. */
  transitionRun(input: TransitionInput): Promise<RunRecord>;

  /** Inserts or replaces task runs by id. */
  saveTaskRuns(runId: string, taskRuns: readonly SerializedTaskRun[]): Promise<void>;
  getTaskRuns(runId: string): Promise<SerializedTaskRun[]>;
  appendLogs(runId: string, records: readonly RunLogRecord[]): Promise<void>;
  /** Every record, in the order they were appended; for large logs, page with `getLogPage` instead. */
  getLogs(runId: string): Promise<RunLogRecord[]>;
  /**
   * One page of a run's log records, in the order they were appended (see {@link logPages}).
   * A run without logs, or that does not exist, has an empty page without `next`.
   */
  getLogPage(runId: string, input?: LogPageInput): Promise<LogPage>;

  /**
   * The schedules of flows' newest versions, not paused, whose next tick is at or before
   * `untilMs`, soonest first, at most `limit`. A registration of a version sets them (see
   * `registerFlowVersion`): new schedules start covered up to the registration.
   */
  listDueSchedules(input: { readonly untilMs: number; readonly limit: number }): Promise<ScheduleState[]>;
  /** Every schedule state, of one project or all, by project, flow and name. */
  listSchedules(project?: string): Promise<ScheduleState[]>;
  /**
   * Compare-and-swap on the schedule's revision that also creates the runs of the ticks it
   * covers, so that each due tick costs one write: when the revision moved (or the schedule is
   * gone) nothing is written. The runs and the advance are one transaction (DynamoDB: up to 49
   * ticks per transaction, the advance with the last). Throws `NotFoundError` when the runs'
   * flow version is not registered.
   */
  advanceSchedule(input: AdvanceScheduleInput): Promise<AdvancedSchedule>;
  /** Pauses or resumes every schedule of a flow; resolves how many changed. */
  setSchedulesPaused(project: string, flow: string, paused: boolean): Promise<number>;

  /** Records that an agent polled. */
  recordAgent(agent: AgentRecord): Promise<void>;
  listAgents(): Promise<AgentRecord[]>;

  close(): Promise<void>;
}

/** Most bytes of JSON one version's annotations may take in all. */
export const MAX_ANNOTATION_BYTES = 16_384;

/**
 * Validates an `annotateFlowVersion` patch: at least one key, keys of 1 to 200 characters,
 * JSON values, at most {@link MAX_ANNOTATION_BYTES} in all. Resolves a plain copy.
 */
export function checkAnnotations(annotations: Readonly<Record<string, JsonValue>>): Record<string, JsonValue> {
  if (typeof annotations !== "object" || annotations === null || Array.isArray(annotations)) {
    throw new TernError(
      "ANNOTATIONS",
      `Flow version annotations must be an object of JSON values, got ${typeof annotations}.`,
    );
  }
  const keys = Object.keys(annotations);
  if (keys.length === 0) throw new TernError("ANNOTATIONS", "Flow version annotations: give at least one key.");
  for (const key of keys) {
    if (key.length === 0 || key.length > 200) {
      throw new TernError(
        "ANNOTATIONS",
        `Flow version annotation key ${JSON.stringify(key)} must have 1 to 200 characters.`,
      );
    }
  }
  const json = JSON.stringify(annotations);
  if (Buffer.byteLength(json) > MAX_ANNOTATION_BYTES) {
    throw new TernError(
      "ANNOTATIONS",
      `Flow version annotations take ${Buffer.byteLength(json)} bytes as JSON; at most ${MAX_ANNOTATION_BYTES} are kept. Store large values in the flow's storage.`,
    );
  }
  return JSON.parse(json) as Record<string, JsonValue>;
}

/** Whether a run of `environmentType` passes a claim's `environmentTypes` filter (an unrecorded type always does). */
export function environmentMatches(allowed: readonly string[] | undefined, environmentType: unknown): boolean {
  return allowed === undefined || typeof environmentType !== "string" || allowed.includes(environmentType);
}

/** Whether an agent with `agentLabels` may take a run with `runLabels` (the seeds' rule). */
export function labelsMatch(agentLabels: readonly string[], runLabels: readonly string[]): boolean {
  if (runLabels.length === 0) return agentLabels.length === 0;
  return runLabels.every((label) => agentLabels.includes(label));
}
