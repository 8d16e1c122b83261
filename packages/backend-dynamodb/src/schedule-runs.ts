/**
 * A schedule's advance with the runs of its ticks: each transaction puts up to
 * {@link TICKS_PER_TRANSACTION} runs (each its idempotency key's item and its own) and the last
 * one also moves the cursor, conditional on the schedule's revision. A due tick thus costs one
 * write request, and two agents racing on one schedule cannot both create its runs.
 */
import { randomUUID } from "node:crypto";
import { TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import {
  type AdvancedSchedule,
  type AdvanceScheduleInput,
  BackendError,
  type CreateRunInput,
  type FlowVersionRecord,
  type RunRecord,
  retryWithBackoff,
  type ScheduleRuns,
  scheduleRunInputs,
} from "@tern/core/plugin";
import { INLINE_LIMIT_BYTES, type Item, type TableClient } from "./db.js";
import { ConditionFailed } from "./errors.js";
import { keys } from "./keys.js";
import { newRunItems } from "./new-runs.js";
import { advanceSchedule, advanceUpdate } from "./schedules.js";

/** Two items per run and the schedule's update stay within a transaction's 100 actions. */
export const TICKS_PER_TRANSACTION = 49;

export interface ScheduleRunsDeps {
  readonly db: TableClient;
  /** The flow version the runs are of (read once per advance). */
  readonly version: FlowVersionRecord;
  readonly idempotencyTtlSeconds: number;
  /** The backend's own `createRun`, for the run-by-run path. */
  readonly createRun: (input: CreateRunInput) => Promise<{ run: RunRecord; created: boolean }>;
  /** A new run's item as a record. */
  readonly record: (item: Item, parameters: string) => RunRecord;
}

export async function advanceWithRuns(
  input: AdvanceScheduleInput & { readonly runs: ScheduleRuns },
  deps: ScheduleRunsDeps,
): Promise<AdvancedSchedule> {
  const { db, version, runs } = { ...deps, runs: input.runs };
  const parameters = JSON.stringify(runs.parameters);
  const all = scheduleRunInputs(input, runs, version.labels);
  // Parameters too large for the run's item are written as chunks first: one run at a time.
  if (Buffer.byteLength(parameters) > INLINE_LIMIT_BYTES) return oneByOne(input, all, [], deps);
  const created: RunRecord[] = [];
  for (let from = 0; from < all.length; from += TICKS_PER_TRANSACTION) {
    const batch = all.slice(from, from + TICKS_PER_TRANSACTION);
    const last = from + TICKS_PER_TRANSACTION >= all.length;
    const now = Date.now();
    const built = batch.map((run) =>
      newRunItems({
        table: db.table,
        id: randomUUID(),
        nowMs: now,
        run,
        version,
        parameters,
        idempotencyTtlSeconds: deps.idempotencyTtlSeconds,
      }),
    );
    const actions: Record<string, unknown>[] = built.flatMap((b) => [{ Put: b.putKey }, { Put: b.putRun }]);
    if (last) actions.push({ Update: { TableName: db.table, ...advanceUpdate(input) } });
    try {
      await retryWithBackoff(
        {
          attempts: 10,
          baseMs: 10,
          capMs: 200,
          // Another agent's transaction held one of the items: the next try finds what it wrote.
          retryable: (error) => error instanceof ConditionFailed && error.conflictOnly,
          exhausted: (error) => error,
        },
        () => db.send(new TransactWriteCommand({ TransactItems: actions }), "create a schedule's runs"),
      );
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      if (error.conflictOnly) {
        throw new BackendError(
          `DynamoDB backend ${db.target.url}: cannot create the runs of schedule "${input.name}" of flow "${input.flow}": ${error.message}.`,
          // Lost to concurrent transactions 10 times: the next poll finds what they wrote.
          { cause: error, retryable: true },
        );
      }
      // The revision moved: another agent advanced the schedule, and created these runs with it.
      if (last && error.conditionFailedAt.includes(actions.length - 1)) return { advanced: false, created };
      // A tick's key names a run already: another agent that advanced the schedule meanwhile
      // (then there is nothing left to do), or another writer (then run by run from here).
      const current = await db.get(keys.schedule(input.project, input.flow, input.name), "read a schedule");
      if (current?.revision !== input.expectedRevision) return { advanced: false, created };
      return oneByOne(input, all.slice(from), created, deps);
    }
    created.push(...built.map((b) => deps.record(b.item, parameters)));
  }
  return { advanced: true, created };
}

/** Creates the runs one at a time (each idempotent), then moves the cursor. */
async function oneByOne(
  input: AdvanceScheduleInput,
  runs: readonly CreateRunInput[],
  created: RunRecord[],
  deps: ScheduleRunsDeps,
): Promise<AdvancedSchedule> {
  for (const run of runs) {
    const result = await deps.createRun(run);
    if (result.created) created.push(result.run);
  }
  return { advanced: await advanceSchedule(deps.db, input), created };
}
