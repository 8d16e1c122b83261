import { openBackend } from "./backend/open.js";
import type { Backend } from "./backend/types.js";
import { describe } from "./describe.js";
import { checkLabels, type Environment } from "./environment/environment.js";
import { TernError } from "./errors.js";
import type { Flow } from "./flow/flow.js";
import type { JsonValue } from "./runner/serialized.js";
import { isLoadingBundle } from "./storage/bundle.js";
import { loadStorage } from "./storage/registry.js";
import type { Storage, StoredManifest } from "./storage/storage.js";

/** Options of `flow.register`. Keys other than these go to the default storage's constructor. */
export interface RegisterOptions {
  /**
   * Build the flow into its storage first. `false` uses a storage already built with
   * `storage.build()` in this process, and fails if it was not.
   * @default true
   */
  readonly build?: boolean;
  /** Labels added to the environment's; agents must have them all. @default [] */
  readonly labels?: readonly string[];
  /** @default the backend of `TERN_BACKEND`, else SQLite under `TERN_HOME` */
  readonly backend?: Backend;
  /** The storage to use when the flow has none. @default a new default storage (`LocalStorage`) */
  readonly storage?: Storage;
  /** Options for the default storage when the flow has none (e.g. `bucket` for S3). */
  readonly [storageOption: string]: unknown;
}

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
}

let defaultStorageType = "LocalStorage";

/** Sets the storage type used for flows that have none (`TERN_DEFAULT_STORAGE` overrides it). */
export function setDefaultStorageType(type: string): void {
  defaultStorageType = type;
}

/** The storage a flow without one is registered into. */
export async function defaultStorage(options: Record<string, unknown> = {}): Promise<Storage> {
  const type = process.env.TERN_DEFAULT_STORAGE?.trim() || defaultStorageType;
  return loadStorage({ type, options: options as Record<string, JsonValue> });
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
  let storage = flow.storage as Storage | undefined;
  if (storage === undefined) {
    storage = fallback ?? (await defaultStorage(storageOptions));
  } else if (Object.keys(storageOptions).length > 0) {
    throw new TernError(
      "REGISTER",
      `register("${project}"): options ${Object.keys(storageOptions)
        .map((k) => `"${k}"`)
        .join(
          ", ",
        )} configure the default storage, but flow "${flow.name}" has its own storage. Remove them or configure the flow's storage.`,
    );
  }
  let bundleUploaded = 0;
  if (build) {
    storage.add(flow);
    await storage.build({ only: [flow.name] });
    bundleUploaded = storage.built(flow.name)?.bytesUploaded ?? 0;
  }
  const built = storage.built(flow.name);
  if (built === undefined) {
    throw new TernError(
      "NOT_BUILT",
      `Flow "${flow.name}" was registered with build: false, but its storage holds no build of it. Call storage.build() first (after storage.add(flow)), or register with build: true.`,
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
    });
    return {
      name: flow.name,
      project,
      version: version.version,
      status,
      hash: stored.hash,
      location: stored.location,
      labels,
      bytesUploaded: bundleUploaded + stored.bytesUploaded,
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
