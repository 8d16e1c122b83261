/**
 * Schedule states: one item per schedule of a flow's newest version, under the flow's
 * `SCHEDULES#` partition, indexed in the claim index (GSI1) by next tick so that a poll reads
 * the ones coming due in one query and one batch read, however many flows are scheduled.
 */
import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { ScheduleSpec } from "@tern/core";
import {
  type AdvanceScheduleInput,
  type FlowVersionRecord,
  type ScheduleState,
  scheduleChanges,
} from "@tern/core/plugin";
import type { Item, TableClient } from "./db.js";
import { ConditionFailed } from "./errors.js";
import { Expr } from "./items.js";
import { INDEXES, keys, PK, SCHEDULES_ACTIVE, SCHEDULES_PAUSED, SK, scheduleIndexKeys, sortableTime } from "./keys.js";

function toState(item: Item): ScheduleState {
  return {
    project: item.project as string,
    flow: item.flow as string,
    version: item.version as number,
    spec: JSON.parse(item.spec as string) as ScheduleSpec,
    coveredUntilMs: item.coveredUntilMs as number,
    nextTickMs: item.nextTickMs as number,
    paused: item.paused === true,
    revision: item.revision as number,
  };
}

function toItem(state: ScheduleState): Item {
  return {
    ...keys.schedule(state.project, state.flow, state.spec.name),
    ...scheduleIndexKeys(state),
    type: "schedule",
    project: state.project,
    flow: state.flow,
    version: state.version,
    spec: JSON.stringify(state.spec),
    coveredUntilMs: state.coveredUntilMs,
    nextTickMs: state.nextTickMs,
    paused: state.paused,
    revision: state.revision,
  };
}

async function flowStates(db: TableClient, project: string, flow: string): Promise<ScheduleState[]> {
  const items = await db.queryPrefix(keys.schedulesPk(project, flow), keys.schedulePrefix, "read a flow's schedules");
  return items.map(toState);
}

/** Makes the flow's states follow the schedules of `version` (after its registration). */
export async function followSchedules(
  db: TableClient,
  version: FlowVersionRecord,
  specs: readonly ScheduleSpec[],
): Promise<void> {
  const existing = await flowStates(db, version.project, version.flow);
  if (existing.length === 0 && specs.length === 0) return;
  const { put, remove } = scheduleChanges(version, specs, existing, Date.now());
  for (const state of put) {
    await db.send(new PutCommand({ TableName: db.table, Item: toItem(state) }), "write a schedule");
  }
  for (const name of remove) {
    await db.send(
      new DeleteCommand({ TableName: db.table, Key: keys.schedule(version.project, version.flow, name) }),
      "remove a schedule",
    );
  }
}

/** States in one claim-index partition with a next tick before `beforeKey`, soonest first. */
async function indexed(db: TableClient, pk: string, limit: number, before?: string): Promise<ScheduleState[]> {
  const e = new Expr();
  const found: Item[] = [];
  for await (const page of db.pages(
    {
      IndexName: INDEXES.claim.name,
      KeyConditionExpression:
        `${e.name(INDEXES.claim.pk)} = ${e.value(pk)}` +
        (before === undefined ? "" : ` AND ${e.name(INDEXES.claim.sk)} < ${e.value(before)}`),
      ...e.params(),
      // A page's size, when a few are asked for (DynamoDB takes no limit above 2^31).
      ...(limit <= 1000 ? { Limit: limit } : {}),
    },
    "query schedules",
  )) {
    found.push(...page);
    if (found.length >= limit) break;
  }
  // The index holds keys (and a few run attributes): read the items themselves.
  const items = await db.batchGet(
    found.slice(0, limit).map((item) => ({ [PK]: item[PK], [SK]: item[SK] })),
    "read schedules",
  );
  return items.map(toState).sort((a, b) => a.nextTickMs - b.nextTickMs || order(a, b));
}

function order(a: ScheduleState, b: ScheduleState): number {
  const x = `${a.project}\0${a.flow}\0${a.spec.name}`;
  const y = `${b.project}\0${b.flow}\0${b.spec.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
}

export function listDueSchedules(db: TableClient, untilMs: number, limit: number): Promise<ScheduleState[]> {
  return indexed(db, SCHEDULES_ACTIVE, limit, sortableTime(Math.floor(untilMs) + 1));
}

export async function listSchedules(db: TableClient, project: string | undefined): Promise<ScheduleState[]> {
  const all = [
    ...(await indexed(db, SCHEDULES_ACTIVE, Number.POSITIVE_INFINITY)),
    ...(await indexed(db, SCHEDULES_PAUSED, Number.POSITIVE_INFINITY)),
  ];
  return all.filter((state) => project === undefined || state.project === project).sort(order);
}

/**
 * The conditional update that moves a schedule's cursor: its key and expressions, for one
 * `UpdateItem` or a transaction's `Update`. The index sort key follows from the input (paused or
 * not, the partition stays).
 */
export function advanceUpdate(input: AdvanceScheduleInput): {
  readonly Key: Item;
  readonly UpdateExpression: string;
  readonly ConditionExpression: string;
  readonly ExpressionAttributeNames?: Record<string, string>;
  readonly ExpressionAttributeValues?: Record<string, unknown>;
} {
  const next = { project: input.project, flow: input.flow, spec: { name: input.name }, nextTickMs: input.nextTickMs };
  const e = new Expr()
    .set("coveredUntilMs", input.coveredUntilMs)
    .set("nextTickMs", input.nextTickMs)
    .set("revision", input.expectedRevision + 1)
    .set(INDEXES.claim.sk, scheduleIndexKeys({ ...next, paused: false })[INDEXES.claim.sk]);
  // A missing item has no revision: the condition fails for it too.
  const condition = `${e.name("revision")} = ${e.value(input.expectedRevision)}`;
  return {
    Key: keys.schedule(input.project, input.flow, input.name),
    UpdateExpression: e.update,
    ConditionExpression: condition,
    ...e.params(),
  };
}

/** Moves the cursor alone (one conditional update); false when the revision moved. */
export async function advanceSchedule(db: TableClient, input: AdvanceScheduleInput): Promise<boolean> {
  const { Key, ...update } = advanceUpdate(input);
  try {
    await db.update(Key, update, "advance a schedule");
    return true;
  } catch (error) {
    if (error instanceof ConditionFailed) return false;
    throw error;
  }
}

export async function setSchedulesPaused(
  db: TableClient,
  project: string,
  flow: string,
  paused: boolean,
): Promise<number> {
  let changed = 0;
  for (const state of await flowStates(db, project, flow)) {
    if (state.paused === paused) continue;
    const e = new Expr()
      .set("paused", paused)
      .set("revision", state.revision + 1)
      .set(INDEXES.claim.pk, paused ? SCHEDULES_PAUSED : SCHEDULES_ACTIVE);
    const condition = `${e.name("revision")} = ${e.value(state.revision)}`;
    try {
      await db.update(
        keys.schedule(project, flow, state.spec.name),
        { UpdateExpression: e.update, ConditionExpression: condition, ...e.params() },
        "pause or resume a schedule",
      );
      changed += 1;
    } catch (error) {
      // Advanced meanwhile: read it again.
      if (!(error instanceof ConditionFailed)) throw error;
      return changed + (await setSchedulesPaused(db, project, flow, paused));
    }
  }
  return changed;
}
