import { createHash } from "node:crypto";
import { TernError } from "../errors.js";

/** What `head` knows about a stored object. */
export interface BlobHead {
  readonly sizeBytes: number;
}

/** Options of {@link BlobStore.put}. */
export interface PutOptions {
  /** sha256 of the body, hex. Drivers send it (or a checksum derived from the body) for the service to verify. */
  readonly sha256: string;
  /** @default "application/octet-stream" */
  readonly contentType?: string;
}

/**
 * A flat store of immutable objects under string keys: the one thing a storage driver
 * implements. Keys are `/`-separated relative paths (`flows/etl/9f2c….mjs`).
 */
export interface BlobStore {
  /** Where the store points, for messages: `file:///…`, `s3://bucket/prefix`, `memory://name`. */
  readonly url: string;
  /** The full URL of one object, for messages. */
  describe(key: string): string;
  /**
   * Writes an object if it is absent. An existing object with the same bytes is success
   * (`"exists"`); with other bytes it is a {@link BlobConflictError}: objects never change.
   */
  put(key: string, body: Uint8Array, options: PutOptions): Promise<"created" | "exists">;
  /** The object's bytes; a missing object is a `NotFoundError` of kind `blob`. */
  get(key: string): Promise<Uint8Array>;
  /** The object's size, or `undefined` when it does not exist. */
  head(key: string): Promise<BlobHead | undefined>;
  /** Keys starting with `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Removes an object; removing a missing one is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Optional: whether the object under `key` holds `body` (whose sha256 is given), or is absent.
   * Drivers whose service keeps a checksum of each object answer without downloading it; without
   * this method, an existing object is downloaded and hashed.
   */
  compareStored?(key: string, body: Uint8Array, sha256: string): Promise<StoredContent>;
}

/** How an object stored under a key compares with the bytes meant for it. */
export type StoredContent = "absent" | "same" | "different";

/** {@link BlobStore.compareStored} where the store has it, else `head` and a download. */
export async function storedContent(
  store: BlobStore,
  key: string,
  body: Uint8Array,
  sha256: string,
): Promise<StoredContent> {
  if (store.compareStored !== undefined) return store.compareStored(key, body, sha256);
  if ((await store.head(key)) === undefined) return "absent";
  return sha256Hex(await store.get(key)) === sha256 ? "same" : "different";
}

/** An object exists under a key with other bytes than the ones being written. */
export class BlobConflictError extends TernError {
  readonly url: string;

  constructor(url: string) {
    super(
      "BLOB_CONFLICT",
      `${url} already exists with different content. Stored objects are immutable and content-addressed; ` +
        "something else wrote this key. Remove it or use another prefix.",
    );
    this.url = url;
  }
}

/**
 * What `put` answers for a key that already holds an object: the same bytes are success
 * (`"exists"`), other bytes a {@link BlobConflictError}, since stored objects never change.
 */
export function existingObject(url: string, sameBytes: boolean): "exists" {
  if (sameBytes) return "exists";
  throw new BlobConflictError(url);
}

/** sha256 of `bytes`, hex. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Checks a key: relative, `/`-separated, no empty, `.` or `..` segments, no backslashes. */
export function checkKey(key: string): string {
  if (
    typeof key !== "string" ||
    key === "" ||
    key.startsWith("/") ||
    key.includes("\\") ||
    key.includes("\0") ||
    key.split("/").some((segment) => segment === "" || segment === "." || segment === "..")
  ) {
    throw new TernError(
      "BLOB_KEY",
      `Invalid object key ${JSON.stringify(key)}: use a relative path of non-empty segments separated by "/", without "." or "..".`,
    );
  }
  return key;
}
