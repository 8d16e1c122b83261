/**
 * The one compare-and-swap loop for run records: read the run, decide what to write, write it
 * against the revision read, and on a conflict (someone wrote the run meanwhile) read and decide
 * again.
 */
import type { Backend, RunRecord, TransitionInput } from "../backend/types.js";
import { isTernError } from "../errors.js";

/** A write to a run, without the compare-and-swap fields `updateRun` fills in. */
export type RunWrite = Omit<TransitionInput, "runId" | "expectedRevision">;

/** What `decide` wants: nothing more (`done`), or a write and what it means once written. */
export type RunChange<T> =
  | { readonly done: T }
  | { readonly write: RunWrite; readonly result: (written: RunRecord) => T | Promise<T> };

export interface UpdateRunOptions<T> {
  /** @default 10 */
  readonly attempts?: number;
  /** The run as the caller already has it: the first decision is made on it, without a read. */
  readonly known?: RunRecord;
  /** What to answer (or throw) when every attempt met a conflict. */
  readonly exhausted: () => T;
}

/** Reads, decides and writes `runId` until a write lands or `decide` says it is done. */
export async function updateRun<T>(
  backend: Backend,
  runId: string,
  decide: (run: RunRecord | undefined) => RunChange<T> | Promise<RunChange<T>>,
  options: UpdateRunOptions<T>,
): Promise<T> {
  let run = options.known;
  for (let attempt = 0; attempt < (options.attempts ?? 10); attempt++) {
    if (attempt > 0 || run === undefined) run = await backend.getRun(runId);
    const change = await decide(run);
    if ("done" in change) return change.done;
    if (run === undefined) throw new Error(`updateRun: a write was decided for run ${runId}, which does not exist.`);
    try {
      const written = await backend.transitionRun({ runId, expectedRevision: run.revision, ...change.write });
      return await change.result(written);
    } catch (error) {
      if (!isTernError(error, "RUN_CONFLICT")) throw error;
    }
  }
  return options.exhausted();
}
