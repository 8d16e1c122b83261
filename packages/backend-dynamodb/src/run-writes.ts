/**
 * The conditional writes that change a run, as pure functions from what the caller asked to the
 * `UpdateItem` expressions (the I/O is in dynamodb.ts). Every one of them compares the run's
 * `revision`, so it happens exactly once or not at all.
 */
import { isTerminalRunState, type Lease, RUN_TRANSITIONS, type RunState } from "@tern/core/plugin";
import type { ChunkedRef } from "./db.js";
import { Expr } from "./items.js";
import { CLAIMABLE, INDEXES, statePk, TTL_ATTRIBUTE } from "./keys.js";

/** Expressions of one conditional `UpdateItem`. */
export interface ConditionalUpdate {
  readonly UpdateExpression: string;
  readonly ConditionExpression: string;
  readonly ExpressionAttributeNames?: Record<string, string>;
  readonly ExpressionAttributeValues?: Record<string, unknown>;
}

function build(e: Expr, condition: string): ConditionalUpdate {
  return { UpdateExpression: e.update, ConditionExpression: condition, ...e.params() };
}

/** Claims a Scheduled run seen at `revision`: sets the lease and raises attempts and revision. */
export function claimUpdate(input: {
  revision: number;
  attempts: number;
  owner: string;
  leaseMs: number;
  nowMs: number;
  /**
   * Unique to one claimRuns call: a retried write of this claim finds its own token, while a
   * claim of the same owner made by a concurrent call (another of one agent's workers) does not.
   */
  claimToken?: string;
  /** Claim only runs of these environment types (or that record none). */
  environmentTypes?: readonly string[];
}): ConditionalUpdate {
  const e = new Expr();
  if (input.claimToken !== undefined) e.set("leaseClaim", input.claimToken);
  e.set("leaseOwner", input.owner)
    .set("leaseExpiresAtMs", input.nowMs + input.leaseMs)
    .set("attempts", input.attempts + 1)
    .set("revision", input.revision + 1)
    .set("updatedAtMs", input.nowMs);
  const condition =
    `${e.name("revision")} = ${e.value(input.revision)} AND ${e.name("state")} = ${e.value("Scheduled")}` +
    ` AND (attribute_not_exists(${e.name("leaseOwner")}) OR ${e.name("leaseExpiresAtMs")} <= ${e.value(input.nowMs)})` +
    // The claim index does not project the environment type: the write checks it.
    (input.environmentTypes === undefined
      ? ""
      : ` AND (attribute_not_exists(${e.name("environmentType")}) OR ${e.name("environmentType")} IN (${
          input.environmentTypes.length === 0 ? e.value("") : input.environmentTypes.map((t) => e.value(t)).join(", ")
        }))`);
  return build(e, condition);
}

/** Ends a Scheduled run whose expired lease was its last allowed attempt. */
export function lostLeaseUpdate(input: {
  revision: number;
  reason: string;
  nowMs: number;
  /** When DynamoDB's TTL may delete the ended run (epoch seconds); none keeps it. */
  expiresAtSeconds?: number;
}): ConditionalUpdate {
  const e = new Expr();
  setStateChange(e, "Failed", input.reason, input.nowMs);
  if (input.expiresAtSeconds !== undefined) e.set(TTL_ATTRIBUTE, input.expiresAtSeconds);
  e.set("revision", input.revision + 1)
    .set("updatedAtMs", input.nowMs)
    .remove("leaseOwner")
    .remove("leaseExpiresAtMs");
  const condition =
    `${e.name("revision")} = ${e.value(input.revision)} AND ${e.name("state")} = ${e.value("Scheduled")}` +
    ` AND ${e.name("leaseExpiresAtMs")} <= ${e.value(input.nowMs)}`;
  return build(e, condition);
}

/**
 * What the writer knows of the run's state at the expected revision: exactly (it read that
 * revision before), or only that it should be one the move is allowed from.
 */
export type StateAtRevision = { readonly exact: RunState } | { readonly changingFrom: readonly RunState[] };

/** The states a run may move to `to` from, `to` itself excluded. */
export function statesAllowedBefore(to: RunState): RunState[] {
  return (Object.keys(RUN_TRANSITIONS) as RunState[]).filter((from) => RUN_TRANSITIONS[from].includes(to));
}

/** A compare-and-swap state change; see `Backend.transitionRun` for the rules it follows. */
export function transitionUpdate(input: {
  expectedRevision: number;
  before: StateAtRevision;
  to: RunState;
  reason: string | undefined;
  deployment: string | undefined;
  /** New outputs: JSON, or where their chunks are. */
  outputs: { readonly json: string } | { readonly ref: ChunkedRef } | undefined;
  lease: Lease | null | undefined;
  nowMs: number;
  /** When DynamoDB's TTL may delete the run once it ended (epoch seconds); none keeps it. */
  expiresAtSeconds?: number;
  /**
   * Written with the change, so that a retry of a write whose response was lost can tell that
   * the first attempt landed (its condition then fails on our own write).
   */
  writeToken?: string;
}): ConditionalUpdate {
  const { to, reason, before } = input;
  const changes = !("exact" in before) || before.exact !== to;
  const e = new Expr();
  if (changes) {
    setStateChange(e, to, reason, input.nowMs);
    if (isTerminalRunState(to) && input.expiresAtSeconds !== undefined) e.set(TTL_ATTRIBUTE, input.expiresAtSeconds);
  } else if (reason !== undefined) {
    // Same state again: a patch (deployment, outputs, lease) keeps its reason unless given one.
    e.set("reason", reason);
  }
  e.set("revision", input.expectedRevision + 1).set("updatedAtMs", input.nowMs);
  if (input.writeToken !== undefined) e.set("writeToken", input.writeToken);
  if (input.deployment !== undefined) e.set("deployment", input.deployment);
  if (input.outputs !== undefined) {
    // The old chunks' place, to delete them once this write won; the if_not_exists-of-itself
    // form is evaluated against the item before the update, like `n = if_not_exists(n, 0) + 1`.
    e.set("previousOutputsRef", null, `if_not_exists(${e.name("outputsRef")}, ${e.value(null)})`);
    if ("json" in input.outputs) e.set("outputs", input.outputs.json).set("outputsRef", null);
    else e.set("outputsRef", input.outputs.ref).remove("outputs");
  }
  if (input.lease === null) e.remove("leaseOwner").remove("leaseExpiresAtMs").remove("leaseClaim");
  else if (input.lease !== undefined) {
    e.set("leaseOwner", input.lease.owner).set("leaseExpiresAtMs", input.lease.expiresAtMs);
  }
  const states = "exact" in before ? [before.exact] : before.changingFrom;
  const condition =
    `${e.name("revision")} = ${e.value(input.expectedRevision)} AND ` +
    (states.length === 1
      ? `${e.name("state")} = ${e.value(states[0])}`
      : `${e.name("state")} IN (${states.map((s) => e.value(s)).join(", ")})`);
  return build(e, condition);
}

/** The attributes a change of state sets: state, reason, history, and the index keys that follow the state. */
function setStateChange(e: Expr, to: RunState, reason: string | undefined, nowMs: number): void {
  e.set("state", to);
  if (reason === undefined) e.remove("reason");
  else e.set("reason", reason);
  const entry = reason === undefined ? { state: to, atMs: nowMs } : { state: to, atMs: nowMs, reason };
  e.set("history", null, `list_append(${e.name("history")}, ${e.value([entry])})`);
  e.set(INDEXES.byState.pk, statePk(to));
  if (to === "Scheduled") e.set(INDEXES.claim.pk, CLAIMABLE);
  else e.remove(INDEXES.claim.pk);
}
