import type { Backend, RunRecord, RunState } from "../backend/types.js";
import { isTernError, TernError } from "../errors.js";
import type { JsonValue } from "../runner/serialize.js";
import { endOpenTaskRuns } from "./end-run.js";
import { LeaseWatch } from "./lease.js";
import { decideSweep } from "./sweep-rules.js";

/** Options of {@link sweepRuns}. */
export interface SweepOptions {
  readonly nowMs?: number;
  /**
   * How long a run may stay Submitted without a runner taking it before the sweep acts: a run
   * whose launch was never recorded goes back to Scheduled for another attempt, a recorded one
   * (with no reconciler to ask) is failed.
   * @default 300000 (5 minutes)
   */
  readonly submittedGraceMs?: number;
  /** Most runs looked at per state. @default 500 */
  readonly limit?: number;
  /**
   * Claims a run may have had before a launch that was never recorded is failed instead of
   * handed back. @default 3 (as `claimRuns`)
   */
  readonly maxAttempts?: number;
  /** Progress lines of reconcilers (a task stopped, a relaunch). @default none */
  readonly log?: (line: string) => void;
  /**
   * What decides that a runner's lease was lost, kept from one sweep to the next (an agent keeps
   * one): a lease is lost when it stayed unchanged for longer than its length by this process's
   * monotonic clock. @default a new one, which sees every lease for the first time: only leases
   * that expired more than 15 minutes ago by this clock count as lost
   */
  readonly leaseWatch?: LeaseWatch;
}

/** A run the sweep moved on. */
export interface SweptRun {
  readonly runId: string;
  readonly from: RunState;
  /** Scheduled: handed back for another launch. */
  readonly to: "Failed" | "Cancelled" | "Scheduled";
  readonly reason: string;
}

/** What a reconciler decided for one run. */
export interface ReconcileDecision {
  readonly runId: string;
  /** The revision the reconciler read; the write is a compare-and-swap on it. */
  readonly expectedRevision: number;
  readonly to: "Failed" | "Cancelled" | "Scheduled";
  readonly reason: string;
  /** Replaces the run's deployment details with the change (a relaunch's history). */
  readonly deployment?: Readonly<Record<string, JsonValue>>;
  /** Runs once the change is written (stop a task only after its run was failed). */
  readonly afterWrite?: () => Promise<void>;
}

/** What a reconciler returns for the runs it was given. */
export interface ReconcileResult {
  readonly decisions: readonly ReconcileDecision[];
  /** Runs it cannot tell anything about (no task recorded yet): the generic rules apply to them. */
  readonly untracked?: readonly string[];
}

/**
 * Maps where runs were deployed (an ECS task...) to their true state. Gets the Submitted, Running
 * and Cancelling runs whose `deployment.kind` it was registered for; may act on the outside world
 * (stop a cancelled run's task) and returns the state changes to make.
 */
export type DeploymentReconciler = (
  runs: readonly RunRecord[],
  context: {
    readonly nowMs: number;
    readonly log: (line: string) => void;
    readonly submittedGraceMs: number;
    /** Why the run's runner lease is lost (see {@link LeaseWatch}), or undefined while it holds. */
    readonly leaseLost: (run: RunRecord) => string | undefined;
  },
) => Promise<ReconcileResult>;

const reconcilers = new Map<string, () => Promise<DeploymentReconciler>>();

/**
 * Registers the reconciler of runs whose deployment details have `kind` (for example
 * `"ecs-task"`), loaded on first use. Sweeps then ask it instead of applying the generic rules.
 */
export function registerDeploymentReconciler(kind: string, load: () => Promise<DeploymentReconciler>): void {
  reconcilers.set(kind, load);
}

function kindOf(run: RunRecord): string | undefined {
  const kind = run.deployment?.kind;
  return typeof kind === "string" && reconcilers.has(kind) ? kind : undefined;
}

/**
 * Moves on runs nobody else will: Running or Cancelling runs whose runner stopped renewing its
 * lease (the process or its host died); Submitted runs that no runner took within the grace
 * period (handed back when their launch was never recorded, failed otherwise); and runs whose
 * deployment a registered reconciler tracks (an ECS task that stopped), as it decides. Agents
 * call it on every poll; it is safe to call from several at once (every write is a
 * compare-and-swap).
 */
export async function sweepRuns(backend: Backend, options: SweepOptions = {}): Promise<SweptRun[]> {
  const now = options.nowMs ?? Date.now();
  const grace = options.submittedGraceMs ?? 300_000;
  const limit = options.limit ?? 500;
  const maxAttempts = options.maxAttempts ?? 3;
  const log = options.log ?? (() => {});
  const watch = options.leaseWatch ?? new LeaseWatch();
  const leaseLost = (run: RunRecord) => watch.lost(run, now);
  const swept: SweptRun[] = [];
  const move = async (
    run: RunRecord,
    to: SweptRun["to"],
    reason: string,
    deployment?: Readonly<Record<string, JsonValue>>,
    expectedRevision = run.revision,
    afterWrite?: () => Promise<void>,
  ) => {
    try {
      await backend.transitionRun({
        runId: run.id,
        expectedRevision,
        to,
        reason,
        lease: null,
        ...(deployment === undefined ? {} : { deployment }),
      });
      swept.push({ runId: run.id, from: run.state, to, reason });
      if (to !== "Scheduled") await endOpenTaskRuns(backend, run.id, to, reason, now);
    } catch (error) {
      // It moved on meanwhile (the runner reported after all, another agent swept it first).
      if (!isTernError(error, "RUN_CONFLICT")) throw error;
      return;
    }
    try {
      await afterWrite?.();
    } catch (error) {
      log(`after ending run ${run.id}: ${(error as Error).message}`);
    }
  };

  const runs: RunRecord[] = [];
  for (const state of ["Submitted", "Running", "Cancelling"] as const) {
    runs.push(...(await backend.listRuns({ state, limit })));
  }
  watch.retain(runs.map((run) => run.id));
  const byKind = new Map<string, RunRecord[]>();
  const generic: RunRecord[] = [];
  for (const run of runs) {
    const kind = kindOf(run);
    if (kind === undefined) generic.push(run);
    else byKind.set(kind, [...(byKind.get(kind) ?? []), run]);
  }
  for (const [kind, tracked] of byKind) {
    const load = reconcilers.get(kind);
    if (load === undefined) continue;
    let result: ReconcileResult;
    try {
      result = await (await load())(tracked, { nowMs: now, log, submittedGraceMs: grace, leaseLost });
    } catch (error) {
      // One deployment kind's outage (ECS unreachable) must not stop the other rules: its runs
      // get the generic ones (expired runner leases, launches no runner took).
      log(`reconciling ${kind} deployments failed: ${(error as Error).message}`);
      generic.push(...tracked);
      continue;
    }
    const byId = new Map(tracked.map((run) => [run.id, run]));
    for (const decision of result.decisions) {
      const run = byId.get(decision.runId);
      if (run === undefined) {
        throw new TernError(
          "RECONCILE",
          `The ${kind} reconciler decided about run ${decision.runId}, which it was not given.`,
        );
      }
      await move(
        run,
        decision.to,
        decision.reason,
        decision.deployment,
        decision.expectedRevision,
        decision.afterWrite,
      );
    }
    for (const id of result.untracked ?? []) {
      const run = byId.get(id);
      if (run !== undefined) generic.push(run);
    }
  }

  for (const run of generic) {
    const decision = decideSweep(run, {
      leaseLost: run.state === "Submitted" ? undefined : leaseLost(run),
      stale: watch.stale(run, grace, now),
      graceMs: grace,
      maxAttempts,
    });
    if (decision !== undefined) await move(run, decision.to, decision.reason);
  }
  return swept;
}
