/**
 * Task runs and log records: the items a runner writes many of while its run goes on, all under
 * the run's partition.
 */
import { QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { NotFoundError } from "@tern/core";
import {
  BackendError,
  checkLogPageInput,
  type LogPage,
  type LogPageInput,
  type RunLogRecord,
  type SerializedTaskRun,
} from "@tern/core/plugin";
import { type ChunkedRef, INLINE_LIMIT_BYTES, type TableClient } from "./db.js";
import { ConditionFailed } from "./errors.js";
import { Expr } from "./items.js";
import { keys, PK, SK } from "./keys.js";

/** Task runs written at once by one `saveTaskRuns` (one `UpdateItem` each). */
export const TASK_RUN_WRITE_CONCURRENCY = 16;

/**
 * A log record is cut to this size (its message shortened, its fields dropped, with a note
 * saying so). Log items are written 25 to a batch, and a batch is limited to 16 MB.
 */
export const LOG_RECORD_LIMIT_BYTES = 64 * 1024;

/**
 * Inserts or replaces task runs by id. `firstOrd` starts the block of order numbers reserved for
 * this call; a task run keeps the number of its first save (`if_not_exists`), so
 * `getTaskRuns` lists them in the order they first appeared, as the SQLite backend does.
 */
export async function saveTaskRunItems(
  db: TableClient,
  runId: string,
  taskRuns: readonly SerializedTaskRun[],
  firstOrd: number,
  concurrency: number,
): Promise<void> {
  // One write per id: the last body given, the order number of its first place in this call.
  const byId = new Map<string, { taskRun: SerializedTaskRun; ord: number }>();
  taskRuns.forEach((taskRun, i) => {
    byId.set(taskRun.id, { taskRun, ord: byId.get(taskRun.id)?.ord ?? firstOrd + i });
  });
  const pending = [...byId.values()];
  const pk = keys.runPk(runId);
  const worker = async () => {
    for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
      const { taskRun, ord } = next;
      const body = JSON.stringify(taskRun);
      const bytes = Buffer.from(body);
      const ref =
        bytes.byteLength > INLINE_LIMIT_BYTES
          ? await db.writeChunks(pk, `TB#${taskRun.id}#`, bytes, "save task runs")
          : undefined;
      const e = new Expr().set("type", "taskRun").set("taskRunId", taskRun.id);
      if (ref === undefined) e.set("body", body).remove("bodyRef");
      else e.set("bodyRef", ref).remove("body");
      e.set("ord", null, `if_not_exists(${e.name("ord")}, ${e.value(ord)})`);
      const output = await db.send<{ Attributes?: { bodyRef?: ChunkedRef } }>(
        new UpdateCommand({
          TableName: db.table,
          Key: keys.taskRun(runId, taskRun.id),
          UpdateExpression: e.update,
          ...e.params(),
          ReturnValues: "UPDATED_OLD",
        }),
        "save task runs",
      );
      const replaced = output.Attributes?.bodyRef;
      if (replaced !== undefined && replaced.prefix !== ref?.prefix)
        await db.deleteChunks(pk, replaced, "save task runs");
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, pending.length) }, worker));
}

/** A log record as stored: its task run id apart, the rest as JSON cut to {@link LOG_RECORD_LIMIT_BYTES}. */
export function prepareLogRecord(record: RunLogRecord, url: string): { taskRunId: string; body: string } {
  const { taskRunId, ...rest } = record;
  let body: string;
  try {
    body = JSON.stringify(rest);
  } catch (error) {
    throw new BackendError(
      `DynamoDB backend ${url}: a log record of task run ${taskRunId} cannot be stored as JSON ` +
        `(${(error as Error).message}). Log JSON-safe fields, e.g. through serializeTaskRun.`,
      { cause: error },
    );
  }
  if (Buffer.byteLength(body) <= LOG_RECORD_LIMIT_BYTES) return { taskRunId, body };
  const limitKb = LOG_RECORD_LIMIT_BYTES / 1024;
  let fitted: Omit<RunLogRecord, "taskRunId"> = rest;
  if (rest.fields !== undefined) {
    const bytes = Buffer.byteLength(JSON.stringify(rest.fields));
    fitted = {
      ...rest,
      fields: { truncated: `${bytes} bytes of fields dropped: a log record holds at most ${limitKb} KB in DynamoDB` },
    };
    body = JSON.stringify(fitted);
  }
  const message = rest.message;
  let keep = message.length;
  while (Buffer.byteLength(body) > LOG_RECORD_LIMIT_BYTES && keep > 0) {
    keep = Math.floor((keep * 0.9 * LOG_RECORD_LIMIT_BYTES) / Buffer.byteLength(body));
    const note = ` … [truncated: ${message.length - keep} more characters; a log record holds at most ${limitKb} KB in DynamoDB]`;
    body = JSON.stringify({ ...fitted, message: `${message.slice(0, keep)}${note}` });
  }
  return { taskRunId, body };
}

/** Inserts or replaces task runs by id; fails with NotFoundError for an unknown run. */
export async function saveTaskRuns(
  db: TableClient,
  runId: string,
  taskRuns: readonly SerializedTaskRun[],
): Promise<void> {
  const last = await reserve(db, runId, "taskSeq", taskRuns.length, "save task runs");
  await saveTaskRunItems(db, runId, taskRuns, last - taskRuns.length + 1, TASK_RUN_WRITE_CONCURRENCY);
}

/** A run's task runs in the order of their first save. */
export async function getTaskRuns(db: TableClient, runId: string): Promise<SerializedTaskRun[]> {
  const pk = keys.runPk(runId);
  const items = await db.queryPrefix(pk, keys.taskRunPrefix, "read task runs");
  items.sort((a, b) => (a.ord as number) - (b.ord as number));
  return Promise.all(
    items.map(async (item) => {
      const ref = item.bodyRef as ChunkedRef | null | undefined;
      const body = ref == null ? (item.body as string) : (await db.readChunks(pk, ref, "read task runs")).toString();
      return JSON.parse(body) as SerializedTaskRun;
    }),
  );
}

/**
 * Appends log records: one request reserves their sequence numbers on the run's item (which
 * also proves the run exists), then they are written 25 to a batch.
 */
export async function appendLogs(db: TableClient, runId: string, records: readonly RunLogRecord[]): Promise<void> {
  const bodies = records.map((record) => prepareLogRecord(record, db.target.url));
  const last = await reserve(db, runId, "logSeq", records.length, "append logs");
  const first = last - records.length + 1;
  await db.batchWrite(
    bodies.map(({ taskRunId, body }, i) => ({ put: { ...keys.log(runId, first + i), taskRunId, body } })),
    "append logs",
  );
}

/** A run's log records in the order they were appended. */
export async function getLogs(db: TableClient, runId: string): Promise<RunLogRecord[]> {
  const items = await db.queryPrefix(keys.runPk(runId), keys.logPrefix, "read logs");
  return items.map((item) => ({
    ...(JSON.parse(item.body as string) as Omit<RunLogRecord, "taskRunId">),
    taskRunId: item.taskRunId as string,
  }));
}

/**
 * One page of a run's log records: one query from the item after `after`'s sequence number, for
 * one item more than asked (to tell whether another page follows). A query stops at 1 MB, so a
 * page may hold fewer records than asked and still have a `next`.
 */
export async function getLogPage(db: TableClient, runId: string, input?: LogPageInput): Promise<LogPage> {
  const { afterSeq, limit } = checkLogPageInput(input);
  const pk = keys.runPk(runId);
  const output = await db.send<{ Items?: Record<string, unknown>[]; LastEvaluatedKey?: Record<string, unknown> }>(
    new QueryCommand({
      TableName: db.table,
      KeyConditionExpression: "#pk = :pk AND #sk BETWEEN :from AND :to",
      ExpressionAttributeNames: { "#pk": PK, "#sk": SK },
      ExpressionAttributeValues: {
        ":pk": pk,
        ":from": keys.log(runId, afterSeq + 1)[SK],
        // Sequence numbers have 12 digits: nothing after this one is a log item.
        ":to": `${keys.logPrefix}9999999999999`,
      },
      ConsistentRead: true,
      Limit: limit + 1,
    }),
    "read logs",
  );
  const items = output.Items ?? [];
  const page = items.slice(0, limit);
  const records = page.map((item) => ({
    ...(JSON.parse(item.body as string) as Omit<RunLogRecord, "taskRunId">),
    taskRunId: item.taskRunId as string,
  }));
  const more = items.length > limit || (output.LastEvaluatedKey !== undefined && page.length > 0);
  if (!more) return { records };
  const lastKey = page.at(-1)![SK] as string;
  return { records, next: String(Number(lastKey.slice(keys.logPrefix.length))) };
}

/** Raises a run's counter by `n` and returns its new value; fails with NotFoundError for an unknown run. */
async function reserve(
  db: TableClient,
  runId: string,
  counter: "taskSeq" | "logSeq",
  n: number,
  what: string,
): Promise<number> {
  const e = new Expr().add(counter, n);
  try {
    const output = await db.send<{ Attributes?: Record<string, unknown> }>(
      new UpdateCommand({
        TableName: db.table,
        Key: keys.run(runId),
        UpdateExpression: e.update,
        ConditionExpression: `attribute_exists(${e.name(PK)})`,
        ...e.params(),
        ReturnValues: "UPDATED_NEW",
      }),
      what,
    );
    return output.Attributes?.[counter] as number;
  } catch (error) {
    if (error instanceof ConditionFailed) {
      throw NotFoundError.run(runId, db.target.url);
    }
    throw error;
  }
}
