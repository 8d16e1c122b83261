/**
 * Builds recorded in storage, so that a flow built in one process is registered from another
 * (`storage.build()` in one CI step, `tern register --no-build` in a later one, possibly on
 * another machine: steps share the storage, not the disk).
 *
 * `storage.build()` writes, for each flow it built, a build record beside the flow's objects:
 * `<prefix>/<flow-slug>/builds/<UTC time>-<sha256>.json`, immutable like every stored object and
 * named by its own sha256. It holds the flow's manifest (which names the bundle and its sha256) and
 * the sha256 of the flow's source file. `register` without building takes the newest record built
 * from the same source file as the flow it was given, and trusts nothing it did not check: the
 * record's bytes against its name, the manifest against its schema, the bundle against the
 * manifest's sha256.
 */
import { readFile } from "node:fs/promises";
import { isTernError, NotFoundError, TernError } from "../errors.js";
import type { Flow } from "../flow/flow.js";
import { type BlobStore, sha256Hex } from "./blob-store.js";
import { type BuiltFlow, slugify } from "./built.js";
import { BundleIntegrityError, checkSha256 } from "./integrity.js";
import { parseManifest } from "./manifest.js";
import type { Manifest } from "./manifest-schema.js";

/** The format of build records this version of tern writes and reads. */
export const BUILD_RECORD_FORMAT = "tern.build/1";

/** What a build record holds. */
interface BuildRecord {
  readonly format: typeof BUILD_RECORD_FORMAT;
  readonly flow: string;
  /** When the build was made (ISO 8601), for messages; the key's time orders the records. */
  readonly builtAt: string;
  /** sha256 of the flow's source file as it was built. */
  readonly sourceSha256: string | null;
  readonly manifest: Manifest;
}

/** What build records need of a storage: its key prefix and its blobs. */
interface Storage {
  readonly prefix: string;
  readonly blobs: BlobStore;
}

/** Where the build records of flow `name` are kept in `storage`: a key prefix, ending in `/`. */
export function buildsPrefix(storage: Storage, name: string): string {
  return `${storage.prefix}/${slugify(name)}/builds/`;
}

/** The URL of the place build records of flow `name` are kept in `storage`, for messages. */
export function buildsUrl(storage: Storage, name: string): string {
  return `${storage.blobs.describe(buildsPrefix(storage, name).slice(0, -1))}/`;
}

/**
 * Records builds in their storage. A build equal to the newest record (same manifest, same source)
 * adds nothing, so a file that builds at its top level does not add a record each time it loads.
 */
export async function recordBuilds(
  storage: Storage,
  builds: ReadonlyArray<{ readonly built: BuiltFlow; readonly sourceFile: string | undefined }>,
): Promise<void> {
  for (const { built, sourceFile } of builds) {
    const sourceSha256 = sourceFile === undefined ? null : await fileSha256(sourceFile);
    const prefix = buildsPrefix(storage, built.name);
    const [newest] = await recordKeys(storage, prefix);
    if (newest !== undefined) {
      const record = await readRecord(storage, newest, built.name);
      if (record.sourceSha256 === sourceSha256 && sameJson(record.manifest, built.manifest)) continue;
    }
    const record: BuildRecord = {
      format: BUILD_RECORD_FORMAT,
      flow: built.name,
      builtAt: new Date().toISOString(),
      sourceSha256,
      manifest: built.manifest,
    };
    const bytes = new TextEncoder().encode(`${JSON.stringify(record, null, 2)}\n`);
    const sha256 = sha256Hex(bytes);
    const stamp = record.builtAt.replace(/[-:.]/g, "");
    await storage.blobs.put(`${prefix}${stamp}-${sha256}.json`, bytes, { sha256, contentType: "application/json" });
  }
}

/**
 * The newest build of `flow` recorded in `storage` from the flow's source file as it is now, its
 * bundle verified; `undefined` when nothing was recorded. Records built from other source only
 * are an error that says so (a later commit's build is not this one's).
 */
export async function findPrebuilt(storage: Storage, flow: Flow): Promise<BuiltFlow | undefined> {
  const prefix = buildsPrefix(storage, flow.name);
  const keys = await recordKeys(storage, prefix);
  if (keys.length === 0) return undefined;
  const sourceSha256 = flow.sourceFile === undefined ? null : await fileSha256(flow.sourceFile);
  let newest: BuildRecord | undefined;
  for (const key of keys) {
    const record = await readRecord(storage, key, flow.name);
    newest ??= record;
    if (sourceSha256 !== null && record.sourceSha256 !== null && record.sourceSha256 !== sourceSha256) continue;
    await verifyBundle(storage, record.manifest, flow.name);
    return { name: flow.name, manifest: record.manifest, bytesUploaded: 0 };
  }
  throw new TernError(
    "NOT_BUILT",
    `Flow "${flow.name}" was registered with build: false, and ${buildsUrl(storage, flow.name)} records ${keys.length} build${keys.length === 1 ? "" : "s"} of it, but none from ${flow.sourceFile} as it is now (the newest was built ${newest?.builtAt} from other source). ` +
      "Build it again from this source (storage.build()) before registering, or register with building.",
  );
}

/** The record keys under `prefix`, newest first (keys start with the build's UTC time). */
async function recordKeys(storage: Storage, prefix: string): Promise<string[]> {
  return (await storage.blobs.list(prefix)).filter((key) => key.endsWith(".json")).reverse();
}

/** Reads a record, checking its bytes against the sha256 in its key, then its shape. */
async function readRecord(storage: Storage, key: string, flow: string): Promise<BuildRecord> {
  const url = storage.blobs.describe(key);
  const bytes = await storage.blobs.get(key);
  const expected = /-([0-9a-f]{64})\.json$/.exec(key)?.[1];
  if (expected === undefined || sha256Hex(bytes) !== expected) {
    throw new BundleIntegrityError(
      `Flow "${flow}": the build record ${url} does not match the sha256 in its name; it was changed after it was written. Remove it and build the flow again.`,
    );
  }
  let value: Partial<BuildRecord>;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Partial<BuildRecord>;
  } catch (error) {
    throw new BundleIntegrityError(
      `Flow "${flow}": the build record ${url} is not JSON (${(error as Error).message}). Remove it and build again.`,
    );
  }
  if (value.format !== BUILD_RECORD_FORMAT || value.flow !== flow) {
    throw new BundleIntegrityError(
      `Flow "${flow}": ${url} is not a build record of this flow in format ${BUILD_RECORD_FORMAT} (it was written by another version of tern). Build the flow again.`,
    );
  }
  return { ...(value as BuildRecord), manifest: await parseManifest(value.manifest, url) };
}

/** Checks that the bundle a manifest names is stored with the sha256 it records. */
async function verifyBundle(storage: Storage, manifest: Manifest, flow: string): Promise<void> {
  const { key, sha256 } = manifest.bundle;
  const url = storage.blobs.describe(key);
  let bytes: Uint8Array;
  try {
    bytes = await storage.blobs.get(key);
  } catch (error) {
    if (!isTernError(error, "NOT_FOUND")) throw error;
    throw NotFoundError.flowBlob(`"${flow}" (pre-built)`, "bundle", key, url, { cause: error });
  }
  checkSha256(bytes, sha256, { what: `"${flow}" (pre-built)`, kind: "bundle", url });
}

async function fileSha256(file: string): Promise<string | null> {
  try {
    return sha256Hex(await readFile(file));
  } catch {
    return null; // the source is not on this machine: the record cannot be matched to it
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
