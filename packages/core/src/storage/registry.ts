import type { TypedConfig } from "../backend/types.js";
import { TernError } from "../errors.js";
import type { JsonValue } from "../runner/serialized.js";
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

const loaders = new Map<string, () => Promise<unknown>>();

/**
 * Makes a storage type loadable on demand: `loader` imports the module that registers it (e.g.
 * `() => import("@tern/storage-cloud/s3")`), so a process pays for a cloud SDK only when a flow
 * stored there is used.
 */
export function registerStorageLoader(type: string, loader: () => Promise<unknown>): void {
  loaders.set(type, loader);
}

/** Rebuilds a storage from its JSON form, loading its type's module first when one is registered. */
export async function loadStorage(config: TypedConfig): Promise<Storage> {
  const loader = loaders.get(config.type);
  if (!factories.has(config.type) && loader !== undefined) {
    try {
      await loader();
    } catch (error) {
      throw new TernError(
        "STORAGE_TYPE",
        `Storage type "${config.type}" needs a package that could not be loaded (${(error as Error).message}). Install it where this runs (for example pnpm add @tern/storage-cloud).`,
        { cause: error },
      );
    }
  }
  return storageFromJSON(config);
}

/** Rebuilds a storage from its JSON form. */
export function storageFromJSON(config: TypedConfig): Storage {
  const factory = factories.get(config.type);
  if (factory === undefined) {
    throw new TernError(
      "STORAGE_TYPE",
      `Unknown storage type "${config.type}". This process knows: ${[...new Set([...factories.keys(), ...loaders.keys()])].join(", ")}. ` +
        "Install and import the package that provides it (for example @tern/storage-cloud/s3).",
    );
  }
  return factory({ ...config.options });
}
