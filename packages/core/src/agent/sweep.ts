import type { Backend, RunRecord, RunState } from "../backend/types.js";
import { RunConflictError } from "../errors.js";

/** Options of {@link sweepRuns}. */
export interface SweepOptions {
  readonly nowMs?: number;
  /**
   * How long a run may stay Submitted without a runner taking it before it is failed.
   * @default 300000 (5 minutes)
   */
  readonly submittedGraceMs?: number;
  /** Most runs looked at per state. @default 500 */
  readonly limit?: number;
}

/** A run the sweep ended. */
export interface SweptRun {
  readonly runId: string;
  readonly from: RunState;
  readonly to: "Failed" | "Cancelled";
  readonly reason: string;
}

/**
 * Ends runs nobody will end: Running or Cancelling runs whose runner stopped renewing its lease
 * (the process or its host died), and Submitted runs that no runner took within the grace
 * period. Agents call it on every poll; it is safe to call from several at once (every write is
 * a compare-and-swap).
 */
export async function sweepRuns(backend: Backend, options: SweepOptions = {}): Promise<SweptRun[]> {
  const now = options.nowMs ?? Date.now();
  const grace = options.submittedGraceMs ?? 300_000;
  const limit = options.limit ?? 500;
  const swept: SweptRun[] = [];
  const end = async (run: RunRecord, to: SweptRun["to"], reason: string) => {
    try {
      await backend.transitionRun({ runId: run.id, expectedRevision: run.revision, to, reason, lease: null });
      swept.push({ runId: run.id, from: run.state, to, reason });
    } catch (error) {
      // It moved on meanwhile (the runner reported after all, another agent swept it first).
      if (!(error instanceof RunConflictError)) throw error;
    }
  };
  for (const state of ["Running", "Cancelling"] as const) {
    for (const run of await backend.listRuns({ state, limit })) {
      const lease = run.lease;
      if (lease === undefined || !lease.owner.startsWith("runner:") || lease.expiresAtMs > now) continue;
      const since = new Date(lease.expiresAtMs).toISOString();
      await end(
        run,
        state === "Cancelling" ? "Cancelled" : "Failed",
        `its runner (${lease.owner.slice("runner:".length)}) stopped reporting: its lease expired at ${since}. The process or its host died.`,
      );
    }
  }
  for (const run of await backend.listRuns({ state: "Submitted", limit })) {
    if (run.lease !== undefined || now - run.updatedAtMs < grace) continue;
    await end(
      run,
      "Failed",
      `it was submitted at ${new Date(run.updatedAtMs).toISOString()} but no runner started it within ${Math.round(grace / 1000)} s.`,
    );
  }
  return swept;
}
