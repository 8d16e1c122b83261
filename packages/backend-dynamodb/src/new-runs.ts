/**
 * The items of a new `Scheduled` run, as `createRun` and a schedule's advance write them (pure:
 * the I/O is in dynamodb.ts and schedule-runs.ts). A run with an idempotency key is two puts in
 * one transaction: the key's item, which fails when the key names a run already, and the run's.
 */
import type { CreateRunInput, FlowVersionRecord } from "@tern/core/plugin";
import type { ChunkedRef, Item } from "./db.js";
import { keys, PK, runIndexKeys } from "./keys.js";

/** A conditional put, as `PutCommand` and a transaction's `Put` take it. */
export interface ConditionalPut {
  readonly TableName: string;
  readonly Item: Item;
  readonly ConditionExpression: string;
  readonly ExpressionAttributeNames: Record<string, string>;
}

export interface NewRun {
  /** The run's item, from which its record is read back (`runFromItem`). */
  readonly item: Item;
  readonly putRun: ConditionalPut;
  /** The idempotency key's item, when the run has a key; its put returns the old item on failure. */
  readonly putKey: (ConditionalPut & { readonly ReturnValuesOnConditionCheckFailure: "ALL_OLD" }) | undefined;
}

export function newRunItems(input: {
  readonly table: string;
  readonly id: string;
  readonly nowMs: number;
  readonly run: CreateRunInput;
  readonly version: FlowVersionRecord;
  /** The parameters as JSON, kept inline unless `parametersRef` says where their chunks are. */
  readonly parameters: string;
  readonly parametersRef?: ChunkedRef;
  readonly idempotencyTtlSeconds: number;
}): NewRun {
  const { id, nowMs: now, run, version } = input;
  const { project, flow, idempotencyKey } = run;
  const base = {
    id,
    project,
    flow,
    version: version.version,
    state: "Scheduled" as const,
    revision: 1,
    labels: [...(run.labels ?? version.labels)],
    environmentType: version.environmentType,
    ...(input.parametersRef === undefined ? { parameters: input.parameters } : { parametersRef: input.parametersRef }),
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    scheduledAtMs: run.scheduledAtMs ?? now,
    createdAtMs: now,
    updatedAtMs: now,
    attempts: 0,
    history: [{ state: "Scheduled", atMs: now }],
  };
  const item = { ...keys.run(id), type: "run", ...base, ...runIndexKeys(base) };
  const absent = { ConditionExpression: "attribute_not_exists(#pk)", ExpressionAttributeNames: { "#pk": PK } };
  const putRun = { TableName: input.table, Item: item, ...absent };
  if (idempotencyKey === undefined) return { item, putRun, putKey: undefined };
  const keyItem = {
    ...keys.idempotency(project, flow, idempotencyKey),
    type: "idempotencyKey",
    project,
    flow,
    key: idempotencyKey,
    runId: id,
    expiresAt: Math.floor(now / 1000) + input.idempotencyTtlSeconds,
  };
  return {
    item,
    putRun,
    putKey: { TableName: input.table, Item: keyItem, ...absent, ReturnValuesOnConditionCheckFailure: "ALL_OLD" },
  };
}
