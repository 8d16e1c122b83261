/** The agent's writes to runs it deploys: launch details, and ending a run it is responsible for. */
import { type Backend, isTerminalRunState, type RunRecord } from "../backend/types.js";
import { TernError } from "../errors.js";
import type { JsonValue } from "../runner/serialize.js";
import { endOpenTaskRuns } from "./end-run.js";
import { updateRun } from "./update-run.js";

/**
 * Writes deployment details on a run, a compare-and-swap retried on conflict. `launch` is
 * launch bookkeeping before the task exists: the run must still be Submitted, and a run that
 * moved on (cancelled, handed back, taken over) throws so the launch stops. `record` is the
 * launch itself: the details go beside whatever state the runner moved the run to.
 */
export async function writeDeployment(
  backend: Backend,
  run: RunRecord,
  details: Readonly<Record<string, JsonValue>>,
  mode: "launch" | "record",
): Promise<RunRecord> {
  return updateRun<RunRecord>(
    backend,
    run.id,
    (latest) => {
      if (mode === "launch" && latest?.state !== "Submitted") {
        throw new TernError(
          "RUN_MOVED_ON",
          `run ${run.id} is ${latest?.state ?? "gone"} now; this agent stops launching it`,
        );
      }
      if (latest === undefined || isTerminalRunState(latest.state)) return { done: latest ?? run };
      return {
        write: { to: mode === "launch" ? "Submitted" : latest.state, deployment: details },
        result: (written) => written,
      };
    },
    {
      attempts: 5,
      known: run,
      exhausted: () => {
        if (mode === "launch") {
          throw new TernError("RUN_MOVED_ON", `run ${run.id} kept changing while its launch was recorded`);
        }
        return run;
      },
    },
  );
}

/**
 * Fails a run whose deploy failed, only while it is still this agent's (Scheduled under its
 * claim, or Submitted); a run cancelled meanwhile ends Cancelled. A run a runner already took
 * (Running) is the runner's: a late deploy error never fails it.
 */
export async function failDeploy(
  backend: Backend,
  runId: string,
  reason: string,
  claimedRevision: number,
): Promise<boolean> {
  const run = await backend.getRun(runId);
  if (run === undefined || run.state === "Running") return false;
  return failRun(backend, runId, reason, claimedRevision);
}

/**
 * Fails a run this agent is responsible for, unless it already ended; a run being cancelled
 * ends Cancelled. With `claimedRevision`, the run is still Scheduled under this agent's claim
 * only if nothing else wrote it: otherwise it belongs to someone else and is left alone.
 * Resolves whether this agent recorded the end.
 */
export async function failRun(
  backend: Backend,
  runId: string,
  reason: string,
  claimedRevision?: number,
): Promise<boolean> {
  return updateRun<boolean>(
    backend,
    runId,
    (run) => {
      if (run === undefined || isTerminalRunState(run.state)) return { done: false };
      if (run.state === "Scheduled" && (claimedRevision === undefined || run.revision !== claimedRevision)) {
        return { done: false };
      }
      const to = run.state === "Cancelling" ? "Cancelled" : "Failed";
      return {
        write: { to, reason, lease: null },
        result: async () => {
          await endOpenTaskRuns(backend, runId, to, reason);
          return true;
        },
      };
    },
    { attempts: 5, exhausted: () => false },
  );
}
