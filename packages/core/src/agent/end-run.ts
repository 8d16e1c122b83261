import type { Backend } from "../backend/types.js";
import { isFinished } from "../runner/states.js";

/**
 * Ends the task runs a run left open (Pending, Running, Retrying) when the run itself ended
 * without its runner (a runner killed, a lease lost, a cancel nobody carried out): they take the
 * run's final state and reason, so no task run stays Running under an ended run.
 */
export async function endOpenTaskRuns(
  backend: Backend,
  runId: string,
  to: "Failed" | "Cancelled",
  reason: string,
  nowMs: number = Date.now(),
): Promise<number> {
  const open = (await backend.getTaskRuns(runId)).filter((taskRun) => !isFinished(taskRun.state));
  if (open.length === 0) return 0;
  await backend.saveTaskRuns(
    runId,
    open.map((taskRun) => ({ ...taskRun, logs: [], state: to, message: `the run ended: ${reason}`, endedAtMs: nowMs })),
  );
  return open.length;
}
