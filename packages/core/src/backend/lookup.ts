import { NotFoundError } from "../errors.js";
import type { Backend, RunRecord } from "./types.js";

/** Reads a run that must exist; a missing one is a `NotFoundError` that says where it looked. */
export async function requireRun(backend: Backend, runId: string): Promise<RunRecord> {
  const run = await backend.getRun(runId);
  if (run === undefined) throw NotFoundError.run(runId, backend.url);
  return run;
}
