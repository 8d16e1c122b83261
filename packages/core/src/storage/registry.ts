import type { TypedConfig } from "../backend/types.js";
import { TernError } from "../errors.js";
import type { JsonValue } from "../runner/serialize.js";
import { LocalStorage, type LocalStorageOptions, MemoryStorage, type MemoryStorageOptions } from "./local.js";
import type { Storage } from "./storage.js";

/** Rebuilds a storage from its JSON options. */
export type StorageFactory = (options: Record<string, JsonValue>) => Storage;

const factories = new Map<string, StorageFactory>([
  [LocalStorage.type, (o) => new LocalStorage(o as unknown as LocalStorageOptions)],
  [MemoryStorage.type, (o) => new MemoryStorage(o as unknown as MemoryStorageOptions)],
]);

/** Makes a storage type rebuildable from `{ type, options }` in this process. */
export function registerStorageType(type: string, factory: StorageFactory): void {
  const existing = factories.get(type);
  if (existing !== undefined && existing !== factory) {
    throw new TernError("STORAGE_TYPE", `Storage type "${type}" is already registered; choose another name.`);
  }
  factories.set(type, factory);
}

/** Rebuilds a storage from its JSON form. */
export function storageFromJSON(config: TypedConfig): Storage {
  const factory = factories.get(config.type);
  if (factory === undefined) {
    throw new TernError(
      "STORAGE_TYPE",
      `Unknown storage type "${config.type}". This process knows: ${[...factories.keys()].join(", ")}. ` +
        "Install and import the package that provides it (for example @tern/storage-cloud/s3).",
    );
  }
  return factory({ ...config.options });
}
