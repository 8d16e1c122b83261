/**
 * The table as the backend uses it: every request goes through {@link TableClient.send}, which
 * counts it, adds up the capacity it consumed, and maps its errors once. Pagination, batch
 * retries and large values split into chunk items live here too, so the backend reads as its
 * access patterns.
 */
import { randomUUID } from "node:crypto";
import type { ConsumedCapacity } from "@aws-sdk/client-dynamodb";
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { BackendError, type BackoffRetryOptions, retryWithBackoff } from "@tern/core/plugin";
import { mapSdkError, type RequestTarget } from "./errors.js";
import { PK, SK } from "./keys.js";

/** An item as the document client reads and writes it. */
export type Item = Record<string, unknown>;

/** Requests sent and capacity consumed by one backend, for benchmarks and cost estimates. */
export interface DynamoDbUsage {
  /** API calls made (SDK retries of one call are not counted again). */
  requests: number;
  /** Those of them that write: puts, updates, deletes, transactions and batch writes. */
  writes: number;
  /** Read and write capacity units DynamoDB reported, table and indexes together. */
  capacityUnits: number;
}

/** A value stored as chunk items because it was too large to stay in its item. */
export interface ChunkedRef {
  /** Sort key prefix of the chunks, under the owning item's partition. */
  readonly prefix: string;
  readonly chunks: number;
  readonly bytes: number;
}

/**
 * JSON values up to this size stay inside their item; larger ones become chunk items. Far below
 * DynamoDB's 400 KB item limit, so an item with a few such values still fits.
 */
export const INLINE_LIMIT_BYTES = 64 * 1024;
/** Bytes per chunk item (DynamoDB's item limit is 400 KB, attribute names included). */
export const CHUNK_BYTES = 256 * 1024;

const BATCH_WRITE_MAX = 25;
const WRITES = [PutCommand, UpdateCommand, DeleteCommand, TransactWriteCommand, BatchWriteCommand];
const BATCH_GET_MAX = 100;

/** A command the document client can send. */
// biome-ignore lint/suspicious/noExplicitAny: the SDK's command types differ per operation.
type AnyCommand = any;

export class TableClient {
  readonly usage: DynamoDbUsage = { requests: 0, writes: 0, capacityUnits: 0 };
  #closed = false;

  constructor(
    readonly doc: DynamoDBDocumentClient,
    readonly target: RequestTarget,
  ) {}

  get table(): string {
    return this.target.table;
  }

  /** Makes every later request fail with a BackendError. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Sends one command; errors are mapped by `mapSdkError` (conditions become `ConditionFailed`).
   * `capacity: false` for control-plane calls, which do not report consumed capacity.
   */
  async send<T>(command: AnyCommand, what: string, capacity = true): Promise<T> {
    if (this.#closed) {
      throw new BackendError(
        `DynamoDB backend ${this.target.url}: cannot ${what}: the backend is closed. Open it again to keep using it.`,
      );
    }
    this.usage.requests += 1;
    if (WRITES.some((kind) => command instanceof kind)) this.usage.writes += 1;
    if (capacity) command.input.ReturnConsumedCapacity ??= "TOTAL";
    let output: { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] };
    try {
      output = (await this.doc.send(command)) as typeof output;
    } catch (error) {
      throw mapSdkError(error, what, this.target);
    }
    for (const capacity of [output.ConsumedCapacity ?? []].flat()) {
      this.usage.capacityUnits += capacity.CapacityUnits ?? 0;
    }
    return output as T;
  }

  /**
   * A conditional `UpdateItem` that resolves with the item after the update; when the condition
   * fails, the `ConditionFailed` carries the item as it was.
   */
  async update(key: Item, update: Omit<UpdateCommandInput, "TableName" | "Key">, what: string): Promise<Item> {
    const output = await this.send<{ Attributes?: Item }>(
      new UpdateCommand({
        ...update,
        TableName: this.table,
        Key: key,
        ReturnValues: "ALL_NEW",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
      what,
    );
    return output.Attributes as Item;
  }

  /** A JSON value to keep in an item: inline when small, else as chunk items under `pk`. */
  async pack(pk: string, base: string, json: string, what: string): Promise<{ json: string; ref?: ChunkedRef }> {
    const bytes = Buffer.from(json);
    if (bytes.byteLength <= INLINE_LIMIT_BYTES) return { json };
    return { json, ref: await this.writeChunks(pk, base, bytes, what) };
  }

  /** A strongly consistent read of one item. */
  async get(key: Item, what: string, projection?: readonly string[]): Promise<Item | undefined> {
    const names = projection?.map((_, i) => `#p${i}`);
    const output = await this.send<{ Item?: Item }>(
      new GetCommand({
        TableName: this.table,
        Key: key,
        ConsistentRead: true,
        ...(projection === undefined
          ? {}
          : {
              ProjectionExpression: names!.join(", "),
              ExpressionAttributeNames: Object.fromEntries(projection.map((p, i) => [`#p${i}`, p])),
            }),
      }),
      what,
    );
    return output.Item;
  }

  /** Runs a query page by page (each page at most 1 MB or `Limit` items). */
  async *pages(input: Omit<QueryCommandInput, "TableName">, what: string): AsyncGenerator<Item[]> {
    let start: Record<string, unknown> | undefined;
    do {
      const output = await this.send<{ Items?: Item[]; LastEvaluatedKey?: Record<string, unknown> }>(
        new QueryCommand({ ...input, TableName: this.table, ExclusiveStartKey: start }),
        what,
      );
      yield output.Items ?? [];
      start = output.LastEvaluatedKey;
    } while (start !== undefined);
  }

  /** Every item of a query, following pagination. */
  async queryAll(input: Omit<QueryCommandInput, "TableName">, what: string): Promise<Item[]> {
    const items: Item[] = [];
    for await (const page of this.pages(input, what)) items.push(...page);
    return items;
  }

  /** Every item of a partition whose sort key starts with `prefix`, in sort key order. */
  queryPrefix(pk: string, prefix: string, what: string, projection?: readonly string[]): Promise<Item[]> {
    // begins_with needs a non-empty prefix: "" means the whole partition.
    return this.queryAll(
      {
        KeyConditionExpression: prefix === "" ? "#pk = :pk" : "#pk = :pk AND begins_with(#sk, :prefix)",
        ExpressionAttributeNames: {
          "#pk": PK,
          ...(prefix === "" ? {} : { "#sk": SK }),
          ...Object.fromEntries((projection ?? []).map((p, i) => [`#p${i}`, p])),
        },
        ExpressionAttributeValues: { ":pk": pk, ...(prefix === "" ? {} : { ":prefix": prefix }) },
        ConsistentRead: true,
        ...(projection === undefined ? {} : { ProjectionExpression: projection.map((_, i) => `#p${i}`).join(", ") }),
      },
      what,
    );
  }

  /** Puts and deletes items in batches of 25, resending what DynamoDB left unprocessed. */
  async batchWrite(requests: ReadonlyArray<{ put: Item } | { delete: Item }>, what: string): Promise<void> {
    for (let i = 0; i < requests.length; i += BATCH_WRITE_MAX) {
      let pending = requests
        .slice(i, i + BATCH_WRITE_MAX)
        .map((r) => ("put" in r ? { PutRequest: { Item: r.put } } : { DeleteRequest: { Key: r.delete } }));
      await retryWithBackoff(this.#batchRetries(what), async () => {
        const output = await this.send<{ UnprocessedItems?: Record<string, typeof pending> }>(
          new BatchWriteCommand({ RequestItems: { [this.table]: pending } }),
          what,
        );
        pending = output.UnprocessedItems?.[this.table] ?? [];
        if (pending.length > 0) throw new Unprocessed();
      });
    }
  }

  /** Strongly consistent reads of many items, 100 per request; the order is not kept. */
  async batchGet(keys: readonly Item[], what: string): Promise<Item[]> {
    const items: Item[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_MAX) {
      let pending: Item[] = keys.slice(i, i + BATCH_GET_MAX);
      await retryWithBackoff(this.#batchRetries(what), async () => {
        const output = await this.send<{
          Responses?: Record<string, Item[]>;
          UnprocessedKeys?: Record<string, { Keys?: Item[] }>;
        }>(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } } }), what);
        items.push(...(output.Responses?.[this.table] ?? []));
        pending = output.UnprocessedKeys?.[this.table]?.Keys ?? [];
        if (pending.length > 0) throw new Unprocessed();
      });
    }
    return items;
  }

  /**
   * Resends of what a batch left unprocessed: 8 requests at most, with backoff between them
   * (100 ms doubling to 2 s, full jitter).
   */
  #batchRetries(what: string): BackoffRetryOptions {
    return {
      attempts: 8,
      baseMs: 100,
      capMs: 2_000,
      retryable: (error) => error instanceof Unprocessed,
      exhausted: () =>
        new BackendError(
          `DynamoDB backend ${this.target.url}: cannot ${what}: DynamoDB left part of a batch unprocessed 8 times (throttling). Retry later.`,
          { retryable: true },
        ),
    };
  }

  /**
   * Stores `bytes` as chunk items under partition `pk`, with sort keys `<base><token>#<n>`. The
   * random token keeps two writers racing for one item from mixing their chunks: only the one
   * whose item write wins is ever read.
   */
  async writeChunks(pk: string, base: string, bytes: Uint8Array, what: string): Promise<ChunkedRef> {
    const prefix = `${base}${randomUUID()}#`;
    const puts: Array<{ put: Item }> = [];
    for (let offset = 0, n = 0; offset < bytes.byteLength; offset += CHUNK_BYTES, n++) {
      puts.push({
        put: {
          [PK]: pk,
          [SK]: `${prefix}${String(n).padStart(6, "0")}`,
          data: bytes.subarray(offset, offset + CHUNK_BYTES),
        },
      });
    }
    await this.batchWrite(puts, what);
    return { prefix, chunks: puts.length, bytes: bytes.byteLength };
  }

  /** Reads back what `writeChunks` stored, checking that every chunk is there. */
  async readChunks(pk: string, ref: ChunkedRef, what: string): Promise<Buffer> {
    const items = await this.queryPrefix(pk, ref.prefix, what);
    const data = Buffer.concat(items.map((item) => item.data as Uint8Array));
    if (items.length !== ref.chunks || data.byteLength !== ref.bytes) {
      throw new BackendError(
        `DynamoDB backend ${this.target.url}: cannot ${what}: item ${pk} points to ${ref.chunks} chunks (${ref.bytes} bytes) ` +
          `under ${ref.prefix}, found ${items.length} (${data.byteLength} bytes). The chunk items were deleted or ` +
          "changed outside tern; the value is lost.",
      );
    }
    return data;
  }

  /** Deletes chunk items; best effort (leftovers are never read, only stored). */
  async deleteChunks(pk: string, ref: ChunkedRef | undefined, what: string): Promise<void> {
    if (ref === undefined) return;
    const deletes = Array.from({ length: ref.chunks }, (_, n) => ({
      delete: { [PK]: pk, [SK]: `${ref.prefix}${String(n).padStart(6, "0")}` },
    }));
    await this.batchWrite(deletes, what).catch(() => undefined);
  }
}

/** A batch request DynamoDB left partly unprocessed (throttling): the rest is sent again. */
class Unprocessed extends Error {}
