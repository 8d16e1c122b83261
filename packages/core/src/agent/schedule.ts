import type { Backend, CreateRunInput, FlowVersionRecord, RunRecord } from "../backend/types.js";
import { checkLabels } from "../environment/environment.js";
import { NotFoundError, ParameterError, TernError } from "../errors.js";
import { checkParameterValues, readParameterText } from "../flow/parameter-schema.js";
import type { JsonValue } from "../runner/serialized.js";
import type { Manifest } from "../storage/manifest.js";
import { loadStorage } from "../storage/registry.js";
import type { Storage } from "../storage/storage.js";

/** What {@link scheduleRun} needs: what `Backend.createRun` takes, and parameters given as text. */
export interface ScheduleRunInput extends CreateRunInput {
  /**
   * Parameter values as text (a command line's `--param k=v`), each read by its parameter's
   * declared schema (`factor=5` is the number 5 for a number parameter, the text "5" for a
   * string one; see `readParameterText`). They join `parameters`.
   */
  readonly textParameters?: Readonly<Record<string, string>>;
}

/** What {@link scheduleRun} resolved to check the run: hand it to `LocalAgent.dispatch` to read nothing twice. */
export interface ScheduledFlow {
  readonly flowVersion: FlowVersionRecord;
  readonly storage: Storage;
  readonly manifest: Manifest;
}

/**
 * Creates a `Scheduled` run after checking its parameters against the flow's manifest
 * (unknown or missing ones, and values their schemas do not accept, are refused, and nothing is
 * written) and its labels. Resolves the
 * run, whether it was created (false: its idempotency key named an existing run), and the flow
 * version, storage and manifest it was checked against.
 */
export async function scheduleRun(
  backend: Backend,
  input: ScheduleRunInput,
): Promise<{ run: RunRecord; created: boolean; resolved: ScheduledFlow }> {
  const version = await backend.getFlowVersion(input.project, input.flow, input.version);
  if (version === undefined) {
    throw NotFoundError.unregistered(input.project, input.flow, input.version, backend.url);
  }
  const storage = await loadStorage(version.storage);
  const manifest = await storage.readManifest(version.location, {
    expectedHash: version.manifestHash,
    label: `"${input.flow}" version ${version.version}`,
  });
  const declared = manifest.flow.parameters;
  const given: Record<string, JsonValue> = { ...input.parameters };
  for (const [name, text] of Object.entries(input.textParameters ?? {})) {
    given[name] = readParameterText(declared.find((p) => p.name === name)?.schema, text) as JsonValue;
  }
  const unknown = Object.keys(given).filter((name) => !declared.some((p) => p.name === name));
  const missing = declared
    .filter((p) => p.required && given[p.name] === undefined && p.default === undefined)
    .map((p) => p.name);
  if (unknown.length > 0 || missing.length > 0) {
    throw new ParameterError(
      input.flow,
      unknown,
      missing,
      declared.map((p) => p.name),
    );
  }
  checkParameterValues(input.flow, declared, given);
  const labels = input.labels === undefined ? undefined : checkLabels([...input.labels], "run labels");
  if (input.idempotencyKey !== undefined && input.idempotencyKey.trim() === "") {
    throw new TernError("RUN_INPUT", "The idempotency key is empty; give a non-empty key (for example the event id).");
  }
  const created = await backend.createRun({
    project: input.project,
    flow: input.flow,
    version: version.version,
    parameters: given,
    ...(labels === undefined ? {} : { labels }),
    ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }),
    ...(input.scheduledAtMs === undefined ? {} : { scheduledAtMs: input.scheduledAtMs }),
  });
  return { ...created, resolved: { flowVersion: version, storage, manifest } };
}
