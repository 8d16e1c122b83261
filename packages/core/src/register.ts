import { cancelSupersededRuns } from "./agent/schedule-runs.js";
import { openBackend } from "./backend/open.js";
import type { Backend, FlowSource } from "./backend/types.js";
import { describe } from "./describe.js";
import { checkLabels, type Environment } from "./environment/environment.js";
import { TernError } from "./errors.js";
import type { Flow } from "./flow/flow.js";
import { readGitCheckout } from "./provenance/git.js";
import { requireCleanCheckout } from "./provenance/source.js";
import type { JsonValue } from "./runner/serialized.js";
import { isLoadingBundle } from "./storage/bundle.js";
import type { LocalStorageOptions, MemoryStorageOptions } from "./storage/local.js";
import { storageOptionsFromText, storageOptionsSchema } from "./storage/options.js";
import { buildsUrl, findPrebuilt } from "./storage/prebuilt.js";
import { loadStorageType, storageFromJSON } from "./storage/registry.js";
import type { BuiltFlow, Storage, StoredManifest } from "./storage/storage.js";

/** What `flow.register` takes besides the default storage's options. */
export interface RegisterSettings {
  /**
   * Build the flow into its storage first. `false` registers a build made beforehand with
   * `storage.build()`: in this process, or in another one that shares the storage (an earlier CI
   * step, on another machine), found in the storage; it fails when there is none.
   * @default true
   */
  readonly build?: boolean;
  /** Labels added to the environment's; agents must have them all. @default [] */
  readonly labels?: readonly string[];
  /** @default the backend of `TERN_BACKEND`, else SQLite under `TERN_HOME` */
  readonly backend?: Backend;
  /** The storage to use when the flow has none. @default a new default storage (`LocalStorage`) */
  readonly storage?: Storage;
  /**
   * Where the flow's code came from, recorded on a new version (`false`: record none). A
   * registration that finds the newest version's manifest unchanged keeps that version and its
   * source, whatever commit it runs from.
   * @default read with `git` from the checkout of the flow's file (`flow.sourceFile`): its
   * `origin` without credentials, `HEAD`, the file's path and whether the work tree is dirty;
   * none when the file is in no checkout or Git is not installed
   */
  readonly source?: FlowSource | false;
  /**
   * Refuse to register (a `DIRTY_CHECKOUT` error, before anything is uploaded) when the flow's
   * checkout has changed, staged or untracked files. A flow outside a checkout is registered.
   * @default false
   */
  readonly requireClean?: boolean;
}

/**
 * The options of each storage type that can be the default storage, by type name. A storage
 * package adds its type's by declaration merging, so that `register()` accepts them:
 *
 * @example
 * declare module "@tern/core/plugin" {
 *   interface StorageOptionsByType { S3Storage: S3StorageOptions }
 * }
 */
export interface StorageOptionsByType {
  LocalStorage: LocalStorageOptions;
  MemoryStorage: MemoryStorageOptions;
}

/** Options for the default storage: those of one of the known storage types. */
export type DefaultStorageOptions = StorageOptionsByType[keyof StorageOptionsByType];

/**
 * Options of `flow.register`: its settings, and options for the default storage when the flow
 * has none (`directory` for `LocalStorage`, `bucket` for `S3Storage`), checked by the storage
 * type's schema: an unknown option or a value of the wrong type is an error that names it.
 */
export type RegisterOptions = RegisterSettings & DefaultStorageOptions;

/** What a registration did. */
export interface RegisterResult {
  readonly name: string;
  readonly project: string;
  readonly version: number;
  /** `new`: a version was recorded; `unchanged`: the newest version has this manifest already. */
  readonly status: "new" | "unchanged";
  /** sha256 of the manifest. */
  readonly hash: string;
  /** The manifest's key in storage. */
  readonly location: string;
  readonly labels: readonly string[];
  /** Bytes this registration uploaded (bundle and manifest). */
  readonly bytesUploaded: number;
  /** The version's source (for `unchanged`, the one recorded when the version was new). */
  readonly source?: FlowSource;
}

let defaultStorageType_ = "LocalStorage";

/** Sets the storage type used for flows that have none (`TERN_DEFAULT_STORAGE` overrides it). */
export function setDefaultStorageType(type: string): void {
  defaultStorageType_ = type;
}

/** The type of the storage a flow without one is registered into. */
export function defaultStorageType(): string {
  return process.env.TERN_DEFAULT_STORAGE?.trim() || defaultStorageType_;
}

/**
 * The storage a flow without one is registered into, built from `options`, which the type's
 * schema checks first (the built-in types' here, a cloud driver's in its constructor).
 */
export async function defaultStorage(options: Record<string, unknown> = {}): Promise<Storage> {
  const type = defaultStorageType();
  await loadStorageType(type);
  if (Object.keys(options).length > 0) {
    (await import("./storage/local-options.js")).checkBuiltInStorageOptions(type, options);
  }
  return storageFromJSON({ type, options: options as Record<string, JsonValue> });
}

/**
 * Options for the default storage given as `key=value` text (`tern register --storage-option`),
 * each value parsed as the storage type's schema expects it (`conditionalWrites=false` is the
 * boolean). The storage checks them when it is built from them.
 */
export async function defaultStorageOptionsFromText(pairs: readonly string[]): Promise<Record<string, unknown>> {
  if (pairs.length === 0) return {};
  const type = defaultStorageType();
  await loadStorageType(type);
  await import("./storage/local-options.js");
  return storageOptionsFromText(storageOptionsSchema(type), pairs);
}

/** Registers `flow` in `project`; see `Flow.register`. */
export async function registerFlow(
  flow: Flow,
  project: string,
  options: RegisterOptions = {},
): Promise<RegisterResult> {
  if (isLoadingBundle()) {
    throw new TernError(
      "REGISTER_IN_BUNDLE",
      `flow.register("${project}") was called while a flow bundle was being loaded; guard it so that it runs only when the file is executed directly.`,
    );
  }
  const {
    build = true,
    labels: extraLabels = [],
    backend: givenBackend,
    storage: fallback,
    source: givenSource,
    requireClean = false,
    ...storageOptions
  } = options;
  if (typeof project !== "string" || project.trim() === "" || project.trim() !== project) {
    throw new TernError(
      "REGISTER",
      `register(project): project must be a non-empty name without surrounding spaces, got ${describe(project)}.`,
    );
  }
  const environment = flow.environment as Environment | undefined;
  const labels = checkLabels(
    [...(environment?.labels ?? []), ...checkLabels(extraLabels, "register(labels)")],
    "register(labels)",
  );
  const optionNames = Object.keys(storageOptions)
    .map((k) => `"${k}"`)
    .join(", ");
  let storage = flow.storage as Storage | undefined;
  // Options for the default storage next to a storage that will be used instead would be ignored.
  const usedInstead =
    storage !== undefined
      ? `flow "${flow.name}" has its own storage`
      : fallback === undefined
        ? undefined
        : "a storage was given as well (storage)";
  if (optionNames !== "" && usedInstead !== undefined) {
    throw new TernError(
      "REGISTER",
      `register("${project}"): options ${optionNames} configure the default storage, but ${usedInstead}. Remove them or configure that storage.`,
    );
  }
  const source = await flowSource(flow, givenSource, requireClean);
  storage ??= fallback ?? (await defaultStorage(storageOptions));
  let bundleUploaded = 0;
  if (build) {
    storage.add(flow);
    const [uploaded] = await storage.upload(await storage.plan({ only: [flow.name] }));
    bundleUploaded = uploaded?.bytesUploaded ?? 0;
  }
  const built: BuiltFlow | undefined = storage.built(flow.name) ?? (await findPrebuilt(storage, flow));
  if (built === undefined) {
    throw new TernError(
      "NOT_BUILT",
      `Flow "${flow.name}" was registered with build: false, but its storage holds no build of it: none made in this process, none recorded in ${buildsUrl(storage, flow.name)}. ` +
        "Build it first with storage.add(flow) and storage.build(), in this process or in an earlier step that shares the storage, or register with building.",
    );
  }
  const manifest = { ...built.manifest, labels };
  let stored: StoredManifest | undefined;
  let backend: Backend | undefined;
  try {
    stored = await storage.writeManifest(manifest);
    backend = givenBackend ?? (await openBackend());
    const { version, status } = await backend.registerFlowVersion({
      project,
      flow: flow.name,
      labels,
      storage: storage.toJSON(),
      location: stored.location,
      manifestHash: stored.hash,
      environmentType: manifest.environment.type,
      schedules: manifest.flow.schedules ?? [],
      ...(source === undefined ? {} : { source }),
    });
    if (status === "new") await cancelSupersededRuns(backend, version);
    return {
      name: flow.name,
      project,
      version: version.version,
      status,
      hash: stored.hash,
      location: stored.location,
      labels,
      bytesUploaded: bundleUploaded + stored.bytesUploaded,
      ...(version.source === undefined ? {} : { source: version.source }),
    };
  } catch (error) {
    // Leave storage as it was: remove what this registration created (content-addressed objects
    // that existed before are shared and stay).
    if (stored !== undefined && stored.bytesUploaded > 0)
      await storage.blobs.delete(stored.location).catch(() => undefined);
    if (bundleUploaded > 0) await storage.blobs.delete(built.manifest.bundle.key).catch(() => undefined);
    throw error;
  } finally {
    if (givenBackend === undefined) await backend?.close();
  }
}

/** The source to record for `flow`: the one given, else its file's checkout; refused when dirty and required clean. */
async function flowSource(
  flow: Flow,
  given: FlowSource | false | undefined,
  requireClean: boolean,
): Promise<FlowSource | undefined> {
  if (given === false) return undefined;
  if (given !== undefined) {
    if (requireClean) requireCleanCheckout(flow.name, { source: given });
    return given;
  }
  const checkout = flow.sourceFile === undefined ? undefined : await readGitCheckout(flow.sourceFile);
  if (requireClean) requireCleanCheckout(flow.name, checkout);
  return checkout?.source;
}
