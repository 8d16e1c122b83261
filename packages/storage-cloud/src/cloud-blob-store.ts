/**
 * The one skeleton of the cloud drivers. A driver supplies its SDK calls, how to read its SDK's
 * errors ({@link Failure}) and the parts of messages only it knows ({@link Hints}); this class runs
 * the put/get/head/list/delete flow (existence check, conditional write, compare on conflict) and
 * builds every error, with its code and whether it may pass.
 */
import { createHash } from "node:crypto";
import { NotFoundError, TernError } from "@tern/core";
import type { BlobHead, BlobStore, PutOptions } from "@tern/core/plugin";
import { BlobConflictError, checkKey, sha256Hex } from "@tern/core/plugin";

export type Operation = "put" | "get" | "head" | "list" | "delete";

/** What an SDK error means. */
export type FailureKind =
  /** The bucket or container does not exist. */
  | "bucket-missing"
  /** The object does not exist. */
  | "not-found"
  /** A create-if-absent write found an object under the key (412, or 409 on some services). */
  | "exists"
  /** No credentials were found, or the service rejected them. */
  | "credentials"
  /** Authenticated, but not allowed. */
  | "access"
  /** Throttling, a server error or an unreachable endpoint, after the SDK's own retries. */
  | "unavailable"
  /** The service received bytes whose checksum differs from the one sent. */
  | "integrity"
  | "other";

/** An SDK error as a driver reads it. */
export interface Failure {
  readonly kind: FailureKind;
  /** The HTTP status; `undefined` when no answer came (a reset, a timeout, DNS). */
  readonly status: number | undefined;
  /** The service's answer in a few words, for messages: `503 ServerBusy`, `403 tern@… does not have access.` */
  readonly said: string;
}

/** What the service keeps about an object: its size and, where it has one, its checksum (hex). */
export interface StoredObject {
  readonly sizeBytes: number;
  readonly sha256?: string | undefined;
  readonly md5?: string | undefined;
}

/** The parts of messages only a driver knows. */
export interface Hints {
  /** Where the bucket was looked for, the command that creates it, and which options to fix. */
  bucketMissing(): { readonly where: string; readonly create: string; readonly fix: string };
  /** The permission an operation needs, the resource it is checked on, and what to do. */
  access(
    operation: Operation,
    key: string,
    where: string,
  ): { readonly permission: string; readonly resource: string; readonly advice: string };
  /** What is wrong with the credentials, and where the SDK looks for them. */
  credentials(failure: Failure, error: unknown): { readonly problem: string; readonly advice: string };
  /** What follows "failed with …" for an unavailable service: the retries made and how to allow more. */
  unavailable(error: unknown): string;
  /** What follows "failed" for any other failure: the service's code and message. */
  failed(failure: Failure, error: unknown): string;
}

/** The `BlobStore` flow over one bucket or container; the SDK's calls and errors are the driver's. */
export abstract class CloudBlobStore<Client> implements BlobStore {
  abstract readonly url: string;
  readonly #service: string;
  readonly #container: string;
  readonly #checksum: string;
  #client: Promise<Client> | undefined;

  /**
   * @param service - how messages name the service: `S3`, `GCS`, `Azure`
   * @param container - how messages name the bucket: `bucket "tern-flows"`
   * @param checksum - the checksum the service verifies on upload, for messages: `SHA-256`, `MD5`
   */
  constructor(service: string, container: string, checksum: string) {
    this.#service = service;
    this.#container = container;
    this.#checksum = checksum;
  }

  /** Whether to look for an existing object before writing: for services that ignore create-if-absent. */
  protected abstract readonly looksFirst: boolean;
  protected abstract readonly hints: Hints;
  /** Builds the client; a rejection is not kept, so a later call can succeed. */
  protected abstract connect(): Promise<Client>;
  /** Writes the object if absent (the SDK's error when it exists). */
  protected abstract write(client: Client, key: string, body: Uint8Array, options: PutOptions): Promise<void>;
  protected abstract read(client: Client, key: string): Promise<Uint8Array>;
  /** The object's size and the service's checksum of it. */
  protected abstract stat(client: Client, key: string): Promise<StoredObject>;
  protected abstract keys(client: Client, prefix: string): Promise<string[]>;
  protected abstract remove(client: Client, key: string): Promise<void>;
  /** Reads an SDK error of `operation`. */
  protected abstract classify(error: unknown, operation: Operation): Failure;
  /** How messages name an operation: `get`, or Azure's `Get Blob`. */
  protected operationName(operation: Operation): string {
    return operation;
  }

  describe(key: string): string {
    return `${this.url}/${key}`;
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<"created" | "exists"> {
    checkKey(key);
    const client = await this.#open();
    if (this.looksFirst) {
      const stored = await this.#stat(client, key);
      if (stored !== undefined) return this.#existing(key, stored, body, options.sha256);
    }
    try {
      await this.write(client, key, body, options);
      return "created";
    } catch (error) {
      if (this.classify(error, "put").kind !== "exists") throw this.#error("put", key, error);
    }
    // Another writer created it first: the same bytes are success, others a conflict.
    return this.#existing(key, await this.#stat(client, key), body, options.sha256);
  }

  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    const client = await this.#open();
    try {
      return await this.read(client, key);
    } catch (error) {
      throw this.#error("get", key, error);
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    checkKey(key);
    const stored = await this.#stat(await this.#open(), key);
    return stored === undefined ? undefined : { sizeBytes: stored.sizeBytes };
  }

  async list(prefix: string): Promise<string[]> {
    const client = await this.#open();
    try {
      return (await this.keys(client, prefix)).sort();
    } catch (error) {
      throw this.#error("list", prefix, error);
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const client = await this.#open();
    try {
      await this.remove(client, key);
    } catch (error) {
      if (this.classify(error, "delete").kind !== "not-found") throw this.#error("delete", key, error);
    }
  }

  /** Compares by the service's checksum where it keeps one; downloads only where it does not. */
  async compareStored(key: string, body: Uint8Array, sha256: string): Promise<"absent" | "same" | "different"> {
    checkKey(key);
    const stored = await this.#stat(await this.#open(), key);
    if (stored === undefined) return "absent";
    return (await this.#same(key, stored, body, sha256)) ? "same" : "different";
  }

  #open(): Promise<Client> {
    this.#client ??= this.connect().catch((error: unknown) => {
      this.#client = undefined;
      throw error;
    });
    return this.#client;
  }

  async #stat(client: Client, key: string): Promise<StoredObject | undefined> {
    try {
      return await this.stat(client, key);
    } catch (error) {
      if (this.classify(error, "head").kind === "not-found") return undefined;
      throw this.#error("head", key, error);
    }
  }

  async #existing(key: string, stored: StoredObject | undefined, body: Uint8Array, sha256: string): Promise<"exists"> {
    if (await this.#same(key, stored, body, sha256)) return "exists";
    throw new BlobConflictError(this.describe(key));
  }

  async #same(key: string, stored: StoredObject | undefined, body: Uint8Array, sha256: string): Promise<boolean> {
    const known = stored === undefined ? undefined : sameByChecksum(stored, body, sha256);
    return known ?? sha256Hex(await this.get(key)) === sha256;
  }

  /** Maps an SDK error to one that says what failed and what to do. */
  #error(operation: Operation, key: string, error: unknown): Error {
    const failure = this.classify(error, operation);
    const name = this.operationName(operation);
    const where = operation === "list" ? `${this.url} (prefix ${JSON.stringify(key)})` : this.describe(key);
    const cause = { cause: error };
    switch (failure.kind) {
      case "bucket-missing": {
        const { where: location, create, fix } = this.hints.bucketMissing();
        return new TernError(
          "STORAGE_BUCKET",
          `${this.#service} ${this.#container} does not exist ${location}. Create it (${create}) or fix the storage's ${fix}.`,
          cause,
        );
      }
      case "not-found":
        if (operation === "put" || operation === "list") break;
        return NotFoundError.blob(key, this.describe(key), cause);
      case "access": {
        const { permission, resource, advice } = this.hints.access(operation, key, where);
        return new TernError(
          "STORAGE_ACCESS",
          `${this.#service} denied ${permission} on ${resource} (${failure.said}). ${advice}`,
          cause,
        );
      }
      case "credentials": {
        const { problem, advice } = this.hints.credentials(failure, error);
        return new TernError(
          "STORAGE_CREDENTIALS",
          `${this.#service}: ${problem} for ${name} ${where} (${failure.said}). ${advice}`,
          cause,
        );
      }
      case "unavailable": {
        const what =
          failure.status === undefined
            ? `could not reach the service (${failure.said})`
            : `failed with ${failure.said}`;
        return new TernError(
          "STORAGE_UNAVAILABLE",
          `${this.#service} ${name} ${where} ${what} ${this.hints.unavailable(error)}`,
          { cause: error, retryable: true },
        );
      }
      case "integrity":
        return new TernError(
          "STORAGE_INTEGRITY",
          `${this.#service} ${name} ${where}: the service received bytes whose ${this.#checksum} differs from the one sent (${failure.said}); the upload was corrupted in transit and nothing was stored. Try again.`,
          { cause: error, retryable: true },
        );
    }
    return new TernError("STORAGE", `${this.#service} ${name} ${where} failed${this.hints.failed(failure, error)}`, {
      cause: error,
      // No HTTP answer at all (a reset, a timeout, DNS): the network, not the request.
      retryable: failure.status === undefined || failure.status === 408,
    });
  }
}

/**
 * Whether a stored object holds `body`, told from its size and the service's checksum; `undefined`
 * when the service keeps no checksum of it (then only its bytes can tell).
 */
export function sameByChecksum(stored: StoredObject, body: Uint8Array, sha256: string): boolean | undefined {
  if (stored.sizeBytes !== body.byteLength) return false;
  if (stored.sha256 !== undefined) return stored.sha256 === sha256;
  if (stored.md5 !== undefined) return stored.md5 === createHash("md5").update(body).digest("hex");
  return undefined;
}

/** A base64 checksum as hex, or `undefined` unless it decodes to `bytes` bytes. */
export function base64ToHex(value: string | undefined, bytes: number): string | undefined {
  if (value === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  const decoded = Buffer.from(value, "base64");
  return decoded.byteLength === bytes ? decoded.toString("hex") : undefined;
}

/** The first line of an error's message, for messages that quote it. */
export function firstLine(error: unknown): string {
  const message = (error as Error | undefined)?.message;
  return (typeof message === "string" && message !== "" ? message : String(error)).split("\n")[0]!.trim();
}
