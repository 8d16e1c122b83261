/**
 * The runs a schedule's advance creates, one per tick (pure: both backends write what this
 * gives, SQLite in one transaction, DynamoDB in one per 49 ticks).
 */
import type { AdvanceScheduleInput, CreateRunInput, ScheduleRuns } from "../backend/types.js";

/** The `createRun` input of each tick of `input.runs`, labelled with the version's labels and the schedule's. */
export function scheduleRunInputs(
  input: Pick<AdvanceScheduleInput, "project" | "flow">,
  runs: ScheduleRuns,
  versionLabels: readonly string[],
): CreateRunInput[] {
  const labels = [...new Set([...versionLabels, ...(runs.labels ?? [])])];
  return runs.ticks.map((tick) => ({
    project: input.project,
    flow: input.flow,
    version: runs.version,
    parameters: runs.parameters,
    labels,
    ...tick,
  }));
}
