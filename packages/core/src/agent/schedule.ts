import type { Backend, CreateRunInput, FlowVersionRecord, RunRecord } from "../backend/types.js";
import { checkLabels } from "../environment/environment.js";
import { NotFoundError, ParameterError, TernError } from "../errors.js";
import type { Manifest } from "../storage/manifest.js";
import { loadStorage } from "../storage/registry.js";
import type { Storage } from "../storage/storage.js";

/** What {@link scheduleRun} needs: the same as `Backend.createRun`. */
export type ScheduleRunInput = CreateRunInput;

/** What {@link scheduleRun} resolved to check the run: hand it to `LocalAgent.dispatch` to read nothing twice. */
export interface ScheduledFlow {
  readonly flowVersion: FlowVersionRecord;
  readonly storage: Storage;
  readonly manifest: Manifest;
}

/**
 * Creates a `Scheduled` run after checking its parameters against the flow's manifest
 * (unknown or missing ones are refused, and nothing is written) and its labels. Resolves the
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
  const given = input.parameters ?? {};
  const declared = manifest.flow.parameters;
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
