/**
 * The rules of a runner's lease on its run (docs/architecture.md, "Leases, fencing and clocks"):
 * how long it lasts, who holds it, and how an observer decides it was lost without trusting
 * another machine's clock.
 */
import { hostname } from "node:os";
import type { Backend, RunRecord } from "../backend/types.js";
import { TernError } from "../errors.js";

/** How long a runner's lease lasts unless `TERN_LEASE_SECONDS` says otherwise. */
export const DEFAULT_LEASE_MS = 60_000;

/**
 * Clocks of agents and runners may be this far apart and runs still survive: a lease is lost by
 * wall-clock comparison only once it expired this long ago by the observer's clock.
 */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;

/** The lease length in force: `TERN_LEASE_SECONDS` (1 to 3600), else 60 s. */
export function leaseMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.TERN_LEASE_SECONDS;
  if (raw === undefined || raw.trim() === "") return DEFAULT_LEASE_MS;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > 3600) {
    throw new TernError(
      "LEASE_OPTIONS",
      `TERN_LEASE_SECONDS must be a number of seconds from 1 to 3600, got ${JSON.stringify(raw)}. Unset it for the default (60).`,
    );
  }
  return Math.round(seconds * 1000);
}

/** How often a lease of `leaseMs` is renewed: four times per lease, so three renewals may fail. */
export function heartbeatEveryMs(leaseMs: number): number {
  return Math.max(250, Math.floor(leaseMs / 4));
}

/** The owner a runner writes on its lease: `runner:<host>:<pid>`. */
export function runnerOwner(pid: number = process.pid): string {
  return `runner:${hostname()}:${pid}`;
}

/** Whether a lease owner is a runner's (an agent's claim lease is not). */
export const isRunnerOwner = (owner: string | undefined): boolean => owner?.startsWith("runner:") === true;

/**
 * Decides whether runners' leases were lost, by this observer's monotonic clock: a lease is lost
 * when this observer has seen it unchanged (same owner, same expiry) for longer than its length,
 * whatever the wall clocks of the writer and the observer say. A lease first seen now counts
 * from now, so an observer that just started acts one lease length later; a lease whose expiry
 * is more than {@link MAX_CLOCK_SKEW_MS} in the past by the observer's wall clock is lost at once
 * (a long-dead runner, seen by an agent that just started).
 */
export class LeaseWatch {
  readonly #seen = new Map<string, { readonly key: string; readonly sinceMs: number }>();
  readonly #unchanged = new Map<string, { readonly key: string; readonly sinceMs: number }>();

  constructor(
    private readonly leaseMs: number = leaseMsFromEnv(),
    private readonly monotonicNow: () => number = () => performance.now(),
  ) {}

  /**
   * Why the run's runner lease is lost, or undefined while it holds (or the run has no runner
   * lease). `wallNowMs` is this observer's wall clock, for the long-dead rule only.
   */
  lost(run: RunRecord, wallNowMs: number = Date.now()): string | undefined {
    const lease = run.lease;
    if (lease === undefined || !isRunnerOwner(lease.owner)) {
      this.#seen.delete(run.id);
      return undefined;
    }
    const key = `${lease.owner}|${lease.expiresAtMs}`;
    const now = this.monotonicNow();
    const seen = this.#seen.get(run.id);
    if (seen === undefined || seen.key !== key) this.#seen.set(run.id, { key, sinceMs: now });
    const unchangedMs = now - (seen?.key === key ? seen.sinceMs : now);
    // The writer's own view of the length (expiry minus its write time, one clock), at least ours
    // and at most four times ours (the last write may be another process's, on another clock).
    const length = Math.max(this.leaseMs, Math.min(4 * this.leaseMs, lease.expiresAtMs - run.updatedAtMs));
    const runner = lease.owner.slice("runner:".length);
    if (unchangedMs > length) {
      return `its runner (${runner}) stopped renewing its lease: no renewal for ${Math.round(unchangedMs / 1000)} s (the lease lasts ${Math.round(length / 1000)} s). The process or its host died, or was paused.`;
    }
    if (wallNowMs - lease.expiresAtMs > MAX_CLOCK_SKEW_MS) {
      return `its runner (${runner}) stopped renewing its lease: it expired at ${new Date(lease.expiresAtMs).toISOString()}. The process or its host died.`;
    }
    return undefined;
  }

  /**
   * Whether the run has not changed for `graceMs` (a `Submitted` run no runner took, a cancel
   * nobody carried out): unchanged (same revision) that long by this observer's monotonic clock,
   * or last written more than `graceMs` plus {@link MAX_CLOCK_SKEW_MS} ago by its wall clock.
   */
  stale(run: RunRecord, graceMs: number, wallNowMs: number = Date.now()): boolean {
    const key = String(run.revision);
    const now = this.monotonicNow();
    const seen = this.#unchanged.get(run.id);
    if (seen === undefined || seen.key !== key) this.#unchanged.set(run.id, { key, sinceMs: now });
    const unchangedMs = now - (seen?.key === key ? seen.sinceMs : now);
    return unchangedMs >= graceMs || wallNowMs - run.updatedAtMs >= graceMs + MAX_CLOCK_SKEW_MS;
  }

  /** Forgets runs not in `live` (ended, or no longer looked at). */
  retain(live: Iterable<string>): void {
    const keep = new Set(live);
    for (const seen of [this.#seen, this.#unchanged]) {
      for (const id of seen.keys()) if (!keep.has(id)) seen.delete(id);
    }
  }
}

/**
 * Whether a run is due although this clock says it is not: its creator made it due at once
 * (`scheduledAtMs <= createdAtMs`, by the creator's clock), and that instant is at most
 * {@link MAX_CLOCK_SKEW_MS} ahead of this clock, so this clock is the one behind. Runs scheduled
 * for later by their creator are never taken early.
 */
export function dueByCreatorsClock(run: RunRecord, nowMs: number): boolean {
  return (
    run.scheduledAtMs <= nowMs ||
    (run.scheduledAtMs <= run.createdAtMs && run.scheduledAtMs - nowMs <= MAX_CLOCK_SKEW_MS)
  );
}

/**
 * Waiting runs that only a clock behind theirs thinks are not due yet (see
 * {@link dueByCreatorsClock}), among the newest `limit`.
 */
export async function runsDueByCreatorsClock(backend: Backend, nowMs: number, limit = 50): Promise<RunRecord[]> {
  const waiting = await backend.listRuns({ state: "Scheduled", limit });
  return waiting.filter((run) => run.scheduledAtMs > nowMs && dueByCreatorsClock(run, nowMs));
}
