import type { TypedConfig } from "../backend/types.js";
import { type TypeFactory, TypeRegistry } from "../type-registry.js";
import { LocalStorage, type LocalStorageOptions, MemoryStorage, type MemoryStorageOptions } from "./local.js";
import type { Storage } from "./storage.js";

/** Rebuilds a storage from its JSON options. */
export type StorageFactory = TypeFactory<Storage>;

const storages = new TypeRegistry<Storage>(
  "Storage",
  [
    [LocalStorage.type, (o) => new LocalStorage(o as unknown as LocalStorageOptions)],
    [MemoryStorage.type, (o) => new MemoryStorage(o as unknown as MemoryStorageOptions)],
  ],
  {
    install: "@tern/storage-cloud",
    unknown: "Install and import the package that provides it (for example @tern/storage-cloud/s3).",
  },
);

/**
 * The storage types of this process. `registerStorageType` makes a type rebuildable from
 * `{ type, options }` (`storageFromJSON`); `registerStorageLoader` makes one loadable on demand,
 * by a loader that imports the module that registers it (`() => import("@tern/storage-cloud/s3")`),
 * so that a process pays for a cloud SDK only when a flow stored there is used.
 */
export const {
  register: registerStorageType,
  registerLoader: registerStorageLoader,
  fromJSON: storageFromJSON,
} = storages;

/** Imports the module of a storage type when a loader names one; resolves whether the type is known then. */
export const loadStorageType = storages.load;

/** Rebuilds a storage from its JSON form, loading its type's module first when one is registered. */
export async function loadStorage(config: TypedConfig): Promise<Storage> {
  await loadStorageType(config.type);
  return storages.fromJSON(config);
}
