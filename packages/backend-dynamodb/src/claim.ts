/**
 * Claims: agents take the oldest claimable runs whose labels match, each with one conditional
 * update on its revision, and fail runs that used up their attempts on lost leases.
 */
import { randomUUID } from "node:crypto";
import { type ClaimInput, labelsMatch, lostLeaseReason, type RunRecord } from "@tern/core/plugin";
import type { Item, TableClient } from "./db.js";
import { ConditionFailed } from "./errors.js";
import { keys, PK } from "./keys.js";
import { claimQuery } from "./queries.js";
import { claimUpdate, lostLeaseUpdate } from "./run-writes.js";

/** What claiming needs from the backend: run items as records, and a run's TTL once it ends. */
export interface RunItems {
  /** A run item as a record, its chunked values read back. */
  record(item: Item): Promise<RunRecord>;
  /** When an ended run may be deleted by DynamoDB's TTL (epoch seconds), if runs are not kept. */
  expiresAt(nowMs: number): number | undefined;
}

/**
 * Claims up to `input.limit` runs for `input.agentId`. Runs another agent claimed first are
 * skipped; a retried claim that already landed is recognised by its claim token.
 */
export async function claimRuns(db: TableClient, input: ClaimInput, runs: RunItems): Promise<RunRecord[]> {
  if (input.limit < 1) return [];
  const maxAttempts = input.maxAttempts ?? 3;
  const now = input.nowMs ?? Date.now();
  const claimed: RunRecord[] = [];
  const claimToken = randomUUID();
  const pages = db.pages(claimQuery(now), "claim runs");
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
        await db
          .update(
            keys.run(runId),
            lostLeaseUpdate({ revision, reason, nowMs: now, expiresAtSeconds: runs.expiresAt(now) }),
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
        claimed.push(await runs.record(await db.update(keys.run(runId), update, "claim runs")));
      } catch (error) {
        // A retry of a claim that landed fails on our own write: the run is ours.
        const mine =
          error instanceof ConditionFailed &&
          error.item?.leaseOwner === input.agentId &&
          error.item.leaseClaim === claimToken &&
          error.item.revision === revision + 1 &&
          error.item.leaseExpiresAtMs === now + input.leaseMs;
        if (mine && error.item !== undefined) {
          claimed.push(await runs.record(error.item));
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
