import { access } from "node:fs/promises";
import { isBuiltin } from "node:module";
import { dirname, join } from "node:path";
import type { TypedConfig } from "../backend/types.js";
import { describe } from "../describe.js";
import type { Environment } from "../environment/environment.js";
import { LocalEnvironment } from "../environment/local.js";
import { isTernError, NotFoundError, TernError } from "../errors.js";
import type { Flow } from "../flow/flow.js";
import { ternHome } from "../home.js";
import { LocalExecutor } from "../runner/executor.js";
import { toSerializedValue } from "../runner/serialize.js";
import type { JsonValue } from "../runner/serialized.js";
import { TERN_VERSION } from "../version.js";
import { type BlobStore, sha256Hex, storedContent } from "./blob-store.js";
import { type BuiltFlow, slugify } from "./built.js";
import { BundleError, bundleFlowModule, importBundle, isLoadingBundle } from "./bundle.js";
import { checkSha256, rememberVerifiedManifest, verifiedManifest } from "./integrity.js";
import { decodeManifest, encodeManifest, MANIFEST_FORMAT, type Manifest } from "./manifest.js";

/** Options every storage takes. */
export interface StorageOptions {
  /**
   * Key prefix of everything this storage writes.
   * @default "flows"
   */
  readonly prefix?: string;
  /** Packages to leave out of bundles (provided where flows run). @default [] */
  readonly external?: readonly string[];
}

export { type BuiltFlow, slugify };

/** A flow bundled and checked by `plan()`, not uploaded yet. */
export interface PlannedFlow {
  readonly name: string;
  readonly manifest: Manifest;
  readonly bytes: Uint8Array;
}

/** A manifest as stored. */
export interface StoredManifest {
  /** The manifest's key: what a flow version points at. */
  readonly location: string;
  /** sha256 of the manifest's bytes. */
  readonly hash: string;
  readonly bytesUploaded: number;
}

/** Context for messages and checks when loading a flow. */
export interface LoadOptions {
  /** The manifest hash the backend recorded; a different stored manifest is refused. */
  readonly expectedHash?: string;
  /** Names the flow version in errors, e.g. `"etl" version 3`. */
  readonly label?: string;
  /** Where verified bundles are cached for import. @default `<TERN_HOME>/cache/bundles` */
  readonly cacheDir?: string;
}

/** A container image that holds a flow version: what `Storage.containerImage` answers. */
export interface FlowImage {
  /** The image by digest: `<registry>/<repository>@sha256:<hex>`. */
  readonly reference: string;
  /** The platform it was built for: `linux/amd64` or `linux/arm64`. */
  readonly platform: string;
}

/** A flow loaded from storage: the bundle's own Flow object and its manifest. */
export interface LoadedFlow {
  readonly flow: Flow;
  readonly manifest: Manifest;
}

export { BundleIntegrityError, forgetVerifiedManifests } from "./integrity.js";

const FLOW_BRAND = Symbol.for("tern.flow");

/** Whether `value` is a tern Flow (from any copy of tern, e.g. one inlined in a bundle). */
export function isFlow(value: unknown): value is Flow {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[FLOW_BRAND] === true;
}

/**
 * Where flows are kept: code bundles and manifests, content-addressed under
 * `<prefix>/<flow-slug>/<sha256>.{mjs,json}`, over a {@link BlobStore}. Subclasses (local disk,
 * S3, GCS, Azure) declare a `static readonly type`, create their blob store lazily, and put only
 * JSON-able, credential-free options in their JSON form.
 */
export abstract class Storage {
  /** The type name a storage is rebuilt by (`registerStorageType`). */
  static readonly type: string = "Storage";

  readonly prefix: string;
  readonly external: readonly string[];
  #blobs: BlobStore | undefined;
  readonly #flows = new Map<string, Flow>();
  readonly #built = new Map<string, BuiltFlow>();

  constructor(options: StorageOptions = {}) {
    const name = new.target.name;
    const prefix = options.prefix ?? "flows";
    if (
      typeof prefix !== "string" ||
      !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(prefix) ||
      prefix.split("/").includes("..")
    ) {
      throw new TernError(
        "STORAGE_OPTIONS",
        `${name}: prefix ${describe(prefix)} is not a valid key prefix; use segments of letters, digits, ".", "_" or "-" separated by "/".`,
      );
    }
    this.prefix = prefix;
    this.external = Object.freeze([...(options.external ?? [])]);
  }

  /** The class's type name. */
  get type(): string {
    return (this.constructor as typeof Storage).type;
  }

  /** The object store, created on first use. */
  get blobs(): BlobStore {
    this.#blobs ??= this.createBlobStore();
    return this.#blobs;
  }

  /** Creates the driver; called once, on first use (never in the constructor). */
  protected abstract createBlobStore(): BlobStore;

  /** Driver options as JSON, without credentials. */
  protected jsonOptions(): Record<string, JsonValue> {
    return {};
  }

  /** The storage as JSON: what manifests and flow versions record. */
  toJSON(): TypedConfig {
    const options: Record<string, JsonValue> = { prefix: this.prefix, ...this.jsonOptions() };
    if (this.external.length > 0) options.external = [...this.external];
    return { type: this.type, options };
  }

  /**
   * The container image that holds the flow version stored at `location`, when this storage keeps
   * flows in images (Docker storage); undefined for storages of bundles. An environment that runs
   * containers (Fargate) runs that image, whose runner finds the bundle in its own file system.
   */
  containerImage(_location: string): FlowImage | undefined {
    return undefined;
  }

  /** Adds a flow to be built; several flows can share one storage. Returns the flow's name. */
  add(flow: Flow): string {
    const existing = this.#flows.get(flow.name);
    if (existing !== undefined && existing !== flow) {
      throw new TernError(
        "STORAGE_DUPLICATE",
        `Storage already holds another flow named "${flow.name}". Flow names must be unique in one storage.`,
      );
    }
    this.#flows.set(flow.name, flow);
    return flow.name;
  }

  /** Whether a flow of that name was added to (or built into) this storage. */
  contains(name: string): boolean {
    return this.#flows.has(name) || this.#built.has(name);
  }

  /** The names of the flows added. */
  get flowNames(): readonly string[] {
    return [...this.#flows.keys()];
  }

  /** What `build()` made of a flow, if it was built in this process. */
  built(name: string): BuiltFlow | undefined {
    return this.#built.get(name);
  }

  /**
   * Bundles every added flow (each source file once) and uploads the bundles; uploads nothing
   * for a bundle already stored. Inside a bundle being loaded, it does nothing. Each build is
   * recorded in the storage (`<prefix>/<flow-slug>/builds/`), so that `register` without
   * building finds it from another process that shares the storage (a later CI step).
   */
  async build(options: { readonly only?: readonly string[] } = {}): Promise<BuiltFlow[]> {
    const built = await this.upload(await this.plan(options));
    if (built.length > 0) {
      const { recordBuilds } = await import("./prebuilt.js");
      await recordBuilds(
        this,
        built.map((b) => ({ built: b, sourceFile: this.#flows.get(b.name)?.sourceFile })),
      );
    }
    return built;
  }

  /**
   * The first half of {@link build}: bundles the added flows, imports each bundle once to find
   * the flows and checks them (exports, dependencies, manifests), writing nothing. A bad flow
   * stops everything before a byte is uploaded.
   */
  async plan(options: { readonly only?: readonly string[] } = {}): Promise<PlannedFlow[]> {
    if (isLoadingBundle()) return [];
    const byFile = new Map<string, Flow[]>();
    for (const flow of this.#flows.values()) {
      if (options.only !== undefined && !options.only.includes(flow.name)) continue;
      const file = flow.sourceFile;
      if (file === undefined) {
        throw new BundleError(
          `Flow "${flow.name}": tern could not tell which file defines it. Pass { module: import.meta.url } to new Flow(...).`,
        );
      }
      byFile.set(file, [...(byFile.get(file) ?? []), flow]);
    }
    const planned: PlannedFlow[] = [];
    for (const [file, flows] of byFile) {
      const { bytes, sha256 } = await bundleFlowModule(file, { external: this.external });
      const exports = await importBundle(bytes, sha256, join(ternHome(), "cache", "bundles"));
      const found = flowExports(exports, file);
      for (const flow of flows) {
        const match = found.find((f) => f.flow.name === flow.name);
        if (match === undefined) {
          throw new BundleError(
            `Flow "${flow.name}" is defined in ${file} but not exported from it. Export it (export const flow = new Flow(...)).`,
          );
        }
        await checkDependencies(match.flow, file);
        const key = `${this.prefix}/${slugify(flow.name)}/${sha256}.mjs`;
        const manifest = describeFlow(match.flow, match.exportName, {
          bundle: { key, sha256, sizeBytes: bytes.byteLength },
          storage: this.toJSON(),
        });
        // Checked now, so that upload() cannot fail on a manifest after the bundle is stored.
        await encodeManifest(manifest);
        planned.push({ name: flow.name, manifest, bytes });
      }
    }
    return planned;
  }

  /**
   * The second half of {@link build}: uploads the planned bundles (each once; nothing for a bundle
   * already stored intact) and remembers the builds for registration.
   */
  async upload(planned: readonly PlannedFlow[]): Promise<BuiltFlow[]> {
    const results: BuiltFlow[] = [];
    const uploaded = new Map<string, number>();
    for (const plan of planned) {
      const { key, sha256 } = plan.manifest.bundle;
      let bytesUploaded = uploaded.get(key);
      if (bytesUploaded === undefined) {
        bytesUploaded = await this.#putIfAbsent(key, plan.bytes, sha256, "text/javascript");
        uploaded.set(key, bytesUploaded);
      } else {
        bytesUploaded = 0;
      }
      const built: BuiltFlow = { name: plan.name, manifest: plan.manifest, bytesUploaded };
      this.#built.set(plan.name, built);
      results.push(built);
    }
    return results;
  }

  /** Stores a manifest (content-addressed; nothing is uploaded when it is already there). */
  async writeManifest(manifest: Manifest): Promise<StoredManifest> {
    const bytes = await encodeManifest(manifest);
    const hash = sha256Hex(bytes);
    const location = `${this.prefix}/${slugify(manifest.flow.name)}/${hash}.json`;
    const bytesUploaded = await this.#putIfAbsent(location, bytes, hash, "application/json");
    return { location, hash, bytesUploaded };
  }

  /**
   * Reads and validates a manifest: JSON only, no user code. With `expectedHash` the manifest is
   * content-addressed and verified, so this process keeps it (a warm Lambda reads each flow
   * version's manifest from storage once, not once per event).
   */
  async readManifest(location: string, options: LoadOptions = {}): Promise<Manifest> {
    const url = this.blobs.describe(location);
    const what = options.label ?? `at ${url}`;
    const cacheKey = options.expectedHash === undefined ? undefined : `${url}#${options.expectedHash}`;
    const cached = cacheKey === undefined ? undefined : verifiedManifest(cacheKey);
    if (cached !== undefined) return cached;
    const bytes = await this.#get(location, what, "manifest");
    if (options.expectedHash !== undefined) checkSha256(bytes, options.expectedHash, { what, kind: "manifest", url });
    const manifest = await decodeManifest(bytes, url);
    if (cacheKey !== undefined) rememberVerifiedManifest(cacheKey, manifest);
    return manifest;
  }

  /** Loads a flow: manifest, bundle (sha256 verified before anything is imported), then the flow export. */
  async load(location: string, options: LoadOptions = {}): Promise<LoadedFlow> {
    const manifest = await this.readManifest(location, options);
    const what = options.label ?? `"${manifest.flow.name}"`;
    const bytes = await this.#get(manifest.bundle.key, what, "bundle");
    const flow = await importFlowBundle(bytes, manifest, {
      what,
      url: this.blobs.describe(manifest.bundle.key),
      ...(options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir }),
    });
    return { flow, manifest };
  }

  /**
   * Writes a content-addressed object unless it is stored intact. An object under the key whose
   * bytes no longer match their hash (edited or corrupted after it was written) is replaced, so
   * registering again repairs it. Drivers whose service keeps a checksum compare without downloading.
   */
  async #putIfAbsent(key: string, bytes: Uint8Array, sha256: string, contentType: string): Promise<number> {
    const stored = await storedContent(this.blobs, key, bytes, sha256);
    if (stored === "same") return 0;
    if (stored === "different") await this.blobs.delete(key);
    const outcome = await this.blobs.put(key, bytes, { sha256, contentType });
    return outcome === "created" ? bytes.byteLength : 0;
  }

  async #get(key: string, what: string, kind: "manifest" | "bundle"): Promise<Uint8Array> {
    try {
      return await this.blobs.get(key);
    } catch (error) {
      if (isTernError(error, "NOT_FOUND")) {
        throw NotFoundError.flowBlob(what, kind, key, this.blobs.describe(key), { cause: error });
      }
      throw error;
    }
  }
}

/**
 * The flow of a bundle read from storage: its sha256 checked against the manifest before anything
 * is imported, then imported from a private file, then its export checked. `what` names the flow
 * version and `url` where the bytes came from, for messages.
 */
export async function importFlowBundle(
  bytes: Uint8Array,
  manifest: Manifest,
  where: { readonly what: string; readonly url: string; readonly cacheDir?: string },
): Promise<Flow> {
  const { what, url } = where;
  const actual = checkSha256(bytes, manifest.bundle.sha256, { what, kind: "bundle", url });
  const exports = await importBundle(bytes, actual, where.cacheDir ?? join(ternHome(), "cache", "bundles"));
  const flow = exports[manifest.exportName];
  if (!isFlow(flow) || flow.name !== manifest.flow.name) {
    throw new BundleError(
      `Flow ${what}: the bundle's export "${manifest.exportName}" is not the flow "${manifest.flow.name}". Register the flow again.`,
    );
  }
  return flow;
}

/** The flows a bundle exports; two with one name, or none, are errors. */
export function flowExports(exports: Record<string, unknown>, file: string): Array<{ exportName: string; flow: Flow }> {
  const found: Array<{ exportName: string; flow: Flow }> = [];
  const seen = new Map<Flow, string>();
  for (const [exportName, value] of Object.entries(exports)) {
    if (!isFlow(value)) continue;
    if (seen.has(value)) continue; // the same flow exported twice (e.g. named and default)
    seen.set(value, exportName);
    const clash = found.find((f) => f.flow.name === value.name);
    if (clash !== undefined) {
      throw new BundleError(
        `${file} exports two flows named "${value.name}" (exports "${clash.exportName}" and "${exportName}"). Give each flow its own name.`,
      );
    }
    found.push({ exportName, flow: value });
  }
  if (found.length === 0) {
    throw new BundleError(
      `${file} exports no flow. Export one: export const flow = new Flow("name", {}, () => { ... }).`,
    );
  }
  return found;
}

/** The manifest of a flow (read from the bundle's own Flow object). */
function describeFlow(
  flow: Flow,
  exportName: string,
  where: { bundle: Manifest["bundle"]; storage: TypedConfig },
): Manifest {
  const environment = (flow.environment as Environment | undefined) ?? new LocalEnvironment();
  if (!(typeof environment === "object" && typeof (environment as Environment).toJSON === "function")) {
    throw new TernError(
      "ENVIRONMENT",
      `Flow "${flow.name}": environment must be an Environment, got ${describe(environment)}.`,
    );
  }
  const parameters = flow.parameters.map((p) => {
    // The JSON Schema its values must fit: every way a run is created checks them against it.
    const schema = p.schema === undefined ? {} : { schema: p.schema as Record<string, JsonValue> };
    if (!p.hasDefault) return { name: p.name, required: p.required, ...schema };
    const value = toSerializedValue(p.default);
    if (value.kind !== "json") {
      throw new TernError(
        "PARAMETER_DEFAULT",
        `Flow "${flow.name}": the default of parameter "${p.name}" cannot be stored as JSON (${value.kind === "unserializable" ? value.reason : "undefined"}).`,
      );
    }
    return { name: p.name, required: p.required, default: value.value, ...schema };
  });
  const env = environment.toJSON();
  return {
    format: MANIFEST_FORMAT,
    ternVersion: TERN_VERSION,
    nodeVersion: process.version,
    bundle: where.bundle,
    exportName,
    flow: {
      name: flow.name,
      ...(flow.description === undefined ? {} : { description: flow.description }),
      tasks: flow.tasks.map((t) => ({
        slug: t.slug,
        task: t.task,
        mapped: t.mapped,
        maxRetries: t.options.maxRetries,
        timeoutMs: t.options.timeoutMs ?? null,
        trigger: t.options.trigger,
      })),
      edges: flow.edges.map((e) => ({ ...e })),
      parameters,
      executor: (flow.executor ?? new LocalExecutor()).toJSON() as TypedConfig,
      referenceTasks: [...flow.referenceTasks],
      ...(flow.schedules.length === 0
        ? {}
        : {
            schedules: [...flow.schedules],
          }),
    },
    storage: where.storage as Manifest["storage"],
    environment: { type: env.type, options: env.options, builtin: environment.builtIn },
    labels: [...environment.labels],
    dependencies: [...environment.dependencies],
  };
}

async function checkDependencies(flow: Flow, file: string): Promise<void> {
  const environment = flow.environment as Environment | undefined;
  for (const dependency of environment?.dependencies ?? []) {
    if (!(await packageInstalled(dependency, dirname(file)))) {
      throw new TernError(
        "DEPENDENCY",
        `Flow "${flow.name}": dependency "${dependency}" of its environment does not resolve from ${dirname(file)}. ` +
          `Install it (pnpm add ${dependency}) or remove it from the environment's dependencies.`,
      );
    }
  }
}

async function packageInstalled(name: string, from: string): Promise<boolean> {
  if (isBuiltin(name)) return true;
  // `lodash/fp` and `@scope/pkg/sub` are provided by the packages `lodash` and `@scope/pkg`.
  const parts = name.split("/");
  const pkg = name.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] as string);
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      await access(join(dir, "node_modules", pkg, "package.json"));
      return true;
    } catch {
      if (dirname(dir) === dir) return false;
    }
  }
}
