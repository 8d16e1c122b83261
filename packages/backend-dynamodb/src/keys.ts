/**
 * The single-table key layout (see the package README for the table of item types). Every key
 * is built here, so the layout is read in one place.
 */
import { createHash } from "node:crypto";
import type { RunState } from "@tern/core/plugin";

/** Table key attributes. */
export const PK = "PK";
export const SK = "SK";

/**
 * The global secondary indexes, each with its key attributes. Runs appear in every index except
 * `claim`, which holds only runs that are `Scheduled` (a sparse index: `GSI1PK` is removed when a
 * run leaves that state).
 */
export const INDEXES = {
  /** Scheduled runs by scheduled time, oldest first: what agents claim. */
  claim: { name: "GSI1", pk: "GSI1PK", sk: "GSI1SK" },
  /** Runs by state, newest first: the agents' sweep and `tern runs --state`. */
  byState: { name: "GSI2", pk: "GSI2PK", sk: "GSI2SK" },
  /** Runs by project, newest first. */
  byProject: { name: "GSI3", pk: "GSI3PK", sk: "GSI3SK" },
  /** Runs by flow, newest first. */
  byFlow: { name: "GSI4", pk: "GSI4PK", sk: "GSI4SK" },
  /** All runs, newest first. */
  all: { name: "GSI5", pk: "GSI5PK", sk: "GSI5SK" },
} as const;

/** The attribute DynamoDB's TTL deletes items by (epoch seconds). */
export const TTL_ATTRIBUTE = "expiresAt";

/** Escapes the separator, so that `a#b` + `c` and `a` + `b#c` never make the same key. */
export function part(value: string): string {
  return value.replaceAll("%", "%25").replaceAll("#", "%23");
}

const PAD = 16; // digits of Number.MAX_SAFE_INTEGER

/**
 * A millisecond time as a fixed-width string that sorts like the number: `1` + 16 digits for
 * values >= 0, `0` + the complement for negative ones. Fractions round up, so "key <= now" in
 * a key condition means "time <= now" for an integer now.
 */
export function sortableTime(ms: number): string {
  const value = Math.ceil(ms);
  return value >= 0
    ? `1${String(value).padStart(PAD, "0")}`
    : `0${String(Number.MAX_SAFE_INTEGER + value).padStart(PAD, "0")}`;
}

/** A non-negative counter as a fixed-width string that sorts like the number. */
export function sortableCount(n: number, width = 10): string {
  return String(n).padStart(width, "0");
}

export const keys = {
  flowVersion: (project: string, flow: string, version: number) => ({
    [PK]: `FLOW#${part(project)}#${part(flow)}`,
    [SK]: `V#${sortableCount(version)}`,
  }),
  flowVersionsPk: (project: string, flow: string) => `FLOW#${part(project)}#${part(flow)}`,
  /** One item per flow with its newest version, all in one partition: `listFlows` is one query. */
  flowSummary: (project: string, flow: string) => ({ [PK]: "FLOWS", [SK]: `${part(project)}#${part(flow)}` }),
  flowSummariesPk: "FLOWS",
  flowSummaryPrefix: (project: string) => `${part(project)}#`,
  run: (runId: string) => ({ [PK]: `RUN#${runId}`, [SK]: "RUN" }),
  runPk: (runId: string) => `RUN#${runId}`,
  taskRun: (runId: string, taskRunId: string) => ({ [PK]: `RUN#${runId}`, [SK]: `T#${taskRunId}` }),
  taskRunPrefix: "T#",
  log: (runId: string, seq: number) => ({ [PK]: `RUN#${runId}`, [SK]: `L#${sortableCount(seq, 12)}` }),
  logPrefix: "L#",
  /** Chunks of one large value: `<prefix><token>#<n>`, under the run's partition. */
  chunk: (runId: string, prefix: string, n: number) => ({
    [PK]: `RUN#${runId}`,
    [SK]: `${prefix}${sortableCount(n, 6)}`,
  }),
  /**
   * Idempotency keys are hashed: an event id can be long and hold any character, and a key must
   * stay under DynamoDB's 2,048-byte partition key limit.
   */
  idempotency: (project: string, flow: string, key: string) => ({
    [PK]: `IDEM#${createHash("sha256")
      .update(JSON.stringify([project, flow, key]))
      .digest("hex")}`,
    [SK]: "IDEM",
  }),
  runsOfFlowPk: (project: string, flow: string) => `RUNS#${part(project)}#${part(flow)}`,
  runsOfProjectPk: (project: string) => `PROJECT#${part(project)}`,
  allRunsPk: "RUNS",
  /** A flow's schedule states, in a partition of their own. */
  schedule: (project: string, flow: string, name: string) => ({
    [PK]: `SCHEDULES#${part(project)}#${part(flow)}`,
    [SK]: `S#${part(name)}`,
  }),
  schedulesPk: (project: string, flow: string) => `SCHEDULES#${part(project)}#${part(flow)}`,
  schedulePrefix: "S#",
  agent: (agentId: string) => ({ [PK]: "AGENTS", [SK]: part(agentId) }),
  agentsPk: "AGENTS",
};

/** The index key attributes of a new run. */
export function runIndexKeys(run: {
  id: string;
  project: string;
  flow: string;
  state: RunState;
  scheduledAtMs: number;
  createdAtMs: number;
}): Record<string, string> {
  const created = `${sortableTime(run.createdAtMs)}#${run.id}`;
  return {
    // GSI1SK stays for the run's life; GSI1PK comes and goes with the Scheduled state.
    ...(run.state === "Scheduled" ? { [INDEXES.claim.pk]: CLAIMABLE } : {}),
    [INDEXES.claim.sk]: `${sortableTime(run.scheduledAtMs)}#${run.id}`,
    [INDEXES.byState.pk]: statePk(run.state),
    [INDEXES.byState.sk]: created,
    [INDEXES.byProject.pk]: keys.runsOfProjectPk(run.project),
    [INDEXES.byProject.sk]: created,
    [INDEXES.byFlow.pk]: keys.runsOfFlowPk(run.project, run.flow),
    [INDEXES.byFlow.sk]: created,
    [INDEXES.all.pk]: keys.allRunsPk,
    [INDEXES.all.sk]: created,
  };
}

/** `GSI1PK` of a claimable run. */
export const CLAIMABLE = "SCHEDULED";

/**
 * `GSI1PK` of schedule states, beside the claimable runs in the claim index, sorted by next tick
 * (`GSI1SK`): agents' polls read the ones coming due in one query. Paused ones have their own.
 */
export const SCHEDULES_ACTIVE = "SCHEDULES";
export const SCHEDULES_PAUSED = "SCHEDULES#PAUSED";

/** The claim index keys of a schedule state. */
export function scheduleIndexKeys(state: {
  project: string;
  flow: string;
  spec: { name: string };
  nextTickMs: number;
  paused: boolean;
}): Record<string, string> {
  return {
    [INDEXES.claim.pk]: state.paused ? SCHEDULES_PAUSED : SCHEDULES_ACTIVE,
    [INDEXES.claim.sk]:
      `${sortableTime(state.nextTickMs)}#${part(state.project)}#${part(state.flow)}#${part(state.spec.name)}`,
  };
}

/** `GSI2PK` of a run in `state`. */
export function statePk(state: RunState): string {
  return `STATE#${state}`;
}
