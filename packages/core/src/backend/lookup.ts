import { NotFoundError, TernError } from "../errors.js";
import type { Backend, RunRecord } from "./types.js";

/** The length of a full run id (a UUID): a shorter one may be the start of one. */
const FULL_RUN_ID_LENGTH = 36;

/** Matches listed at most by an ambiguous prefix's error. */
const AMBIGUOUS_SHOWN = 10;

/**
 * Reads a run that must exist, by its id or a unique start of it (`9dc431b6`, as agents print
 * ids). A missing run is a `NotFoundError` that says where it looked; a prefix that more than one
 * run starts with is an error listing them.
 */
export async function requireRun(backend: Backend, idOrPrefix: string): Promise<RunRecord> {
  const run = await backend.getRun(idOrPrefix);
  if (run !== undefined) return run;
  if (idOrPrefix === "" || idOrPrefix.length >= FULL_RUN_ID_LENGTH) throw NotFoundError.run(idOrPrefix, backend.url);
  const ids = await backend.findRunIds(idOrPrefix, AMBIGUOUS_SHOWN + 1);
  if (ids.length > 1) {
    const shown = ids.slice(0, AMBIGUOUS_SHOWN).join(", ");
    throw new TernError(
      "RUN_INPUT",
      `Run id ${JSON.stringify(idOrPrefix)} is the start of more than one run (${shown}${ids.length > AMBIGUOUS_SHOWN ? ", ..." : ""}). Give more of the id.`,
    );
  }
  const found = ids[0] === undefined ? undefined : await backend.getRun(ids[0]);
  if (found === undefined) throw NotFoundError.run(idOrPrefix, backend.url);
  return found;
}
