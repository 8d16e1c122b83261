import { join, resolve } from "node:path";
import { ternHome } from "../home.js";
import type { JsonValue } from "../runner/serialized.js";
import type { BlobStore } from "./blob-store.js";
import { LocalBlobStore } from "./local-blob-store.js";
import { MemoryBlobStore } from "./memory-blob-store.js";
import { Storage, type StorageOptions } from "./storage.js";

/** Options of {@link LocalStorage}. */
export interface LocalStorageOptions extends StorageOptions {
  /**
   * The directory objects are written under.
   * @default `<TERN_HOME>/storage`, resolved when first used
   */
  readonly directory?: string;
}

/**
 * Flows on the local disk: the embedded default, for one machine.
 *
 * @example
 * new Flow("etl", { storage: new LocalStorage({ directory: "/var/lib/tern" }) }, build);
 */
export class LocalStorage extends Storage {
  // Typed as string, not the literal, so that subclasses can declare their own type name.
  static override readonly type: string = "LocalStorage";
  readonly directory: string | undefined;

  constructor(options: LocalStorageOptions = {}) {
    super(options);
    this.directory = options.directory === undefined ? undefined : resolve(options.directory);
  }

  protected override createBlobStore(): BlobStore {
    return new LocalBlobStore(this.directory ?? join(ternHome(), "storage"));
  }

  protected override jsonOptions(): Record<string, JsonValue> {
    // Without a directory, each process resolves <TERN_HOME>/storage itself, so the agent and
    // runner find the flows wherever TERN_HOME points them.
    return this.directory === undefined ? {} : { directory: this.directory };
  }
}

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions extends StorageOptions {
  /** Storages with one name share their objects within a process. @default "default" */
  readonly name?: string;
}

/** Flows in this process's memory, for tests. */
export class MemoryStorage extends Storage {
  static override readonly type: string = "MemoryStorage";
  readonly name: string;

  constructor(options: MemoryStorageOptions = {}) {
    super(options);
    this.name = options.name ?? "default";
  }

  protected override createBlobStore(): BlobStore {
    return new MemoryBlobStore(this.name);
  }

  protected override jsonOptions(): Record<string, JsonValue> {
    return { name: this.name };
  }
}
