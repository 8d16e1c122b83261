/**
 * The options schemas of the built-in storages, `LocalStorage` and `MemoryStorage`: strict objects,
 * like the cloud drivers', so an unknown key or a value of the wrong type is named with the fix.
 * A module of its own, imported when options arrive untyped (`register()`'s default-storage
 * options, `tern register --storage-option`): zod is slow to load, and constructing a storage in
 * a flow file should not pay for it.
 */
import * as z from "zod/mini";
import { LocalStorage, type LocalStorageOptions, MemoryStorage, type MemoryStorageOptions } from "./local.js";
import { checkStorageOptions, registerStorageOptionsSchema } from "./options.js";

/** Compiles only when the two types are the same (each assignable to the other). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** The options every storage takes (`StorageOptions`); the storage checks the prefix itself. */
const common = {
  prefix: z.optional(z.string()),
  external: z.optional(z.readonly(z.array(z.string()))),
};

const nonEmpty = (option: string) => z.string().check(z.minLength(1, `option "${option}" must not be empty.`));

const localSchema = z.strictObject({ ...common, directory: z.optional(nonEmpty("directory")) });
const memorySchema = z.strictObject({ ...common, name: z.optional(nonEmpty("name")) });

// The schemas parse exactly the documented options interfaces, so the two cannot drift apart.
const agreement: [
  Same<z.output<typeof localSchema>, LocalStorageOptions>,
  Same<z.output<typeof memorySchema>, MemoryStorageOptions>,
] = [true, true];
void agreement;

const builtIn = new Map<string, z.ZodMiniObject>([
  [LocalStorage.type, localSchema],
  [MemoryStorage.type, memorySchema],
]);
for (const [type, schema] of builtIn) registerStorageOptionsSchema(type, schema);

/** Checks options meant for a built-in storage type; other types check their own. */
export function checkBuiltInStorageOptions(type: string, options: unknown): void {
  const schema = builtIn.get(type);
  if (schema !== undefined) checkStorageOptions(type, schema, options);
}
