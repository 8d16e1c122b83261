/**
 * The sweep's generic rules, for runs no deployment reconciler tracks: what becomes of a run
 * nobody else will move on. Pure: what the observer saw (a lost lease, a run unchanged for the
 * grace period) comes in as facts, decided by its `LeaseWatch`.
 */
import type { RunRecord } from "../backend/types.js";

/** What the observer knows about a run besides its record. */
export interface SweepFacts {
  /** Why the run's runner lease is lost (`LeaseWatch.lost`), or undefined while it holds. */
  readonly leaseLost: string | undefined;
  /** Whether the run stayed unchanged for the grace period (`LeaseWatch.stale`). */
  readonly stale: boolean;
  readonly graceMs: number;
  /** Claims a run may have had before a launch that was never recorded is failed instead of handed back. */
  readonly maxAttempts: number;
}

/** A change to make; undefined: leave the run alone. */
export interface SweepDecision {
  readonly to: "Failed" | "Cancelled" | "Scheduled";
  readonly reason: string;
}

/** Decides what becomes of a Submitted, Running or Cancelling run under the generic rules. */
export function decideSweep(run: RunRecord, facts: SweepFacts): SweepDecision | undefined {
  const waited = Math.round(facts.graceMs / 1000);
  const at = new Date(run.updatedAtMs).toISOString();
  if (run.state === "Cancelling" && run.lease === undefined) {
    // Cancelled before any runner took it, and none did since: nothing will end it otherwise.
    if (!facts.stale) return undefined;
    return {
      to: "Cancelled",
      reason: `cancelled at ${at} before a runner started it, and none started within ${waited} s.`,
    };
  }
  if (run.state === "Running" || run.state === "Cancelling") {
    if (facts.leaseLost === undefined) return undefined;
    return run.state === "Cancelling"
      ? { to: "Cancelled", reason: `cancelled; ${facts.leaseLost}` }
      : { to: "Failed", reason: facts.leaseLost };
  }
  if (run.state !== "Submitted" || run.lease !== undefined || !facts.stale) return undefined;
  if (launchRecorded(run)) {
    return { to: "Failed", reason: `it was submitted at ${at} but no runner started it within ${waited} s.` };
  }
  // The agent stopped between Submitted and recording the launch. Launching again is safe for
  // environments that make launches idempotent (ECS's clientToken), and for a local process that
  // never started (it would be Running by now).
  if (run.attempts < facts.maxAttempts) {
    return {
      to: "Scheduled",
      reason: `submitted at ${at}, but no launch was recorded and no runner started within ${waited} s (the agent stopped?): handed back for another attempt`,
    };
  }
  return {
    to: "Failed",
    reason: `submitted at ${at}, but no launch was recorded and no runner started within ${waited} s, after ${run.attempts} attempts. Check the agents' logs.`,
  };
}

/** Whether the run's deployment names something that was launched (a process, a task). */
export function launchRecorded(run: RunRecord): boolean {
  const details = run.deployment;
  if (details === undefined) return false;
  // A deployment that only records launch bookkeeping (`launched: false`) launched nothing yet.
  return details.launched !== false;
}
