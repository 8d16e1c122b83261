/**
 * `DockerStorage`: each flow version is an OCI image (the base image, then the dependencies, the
 * files and the flow's bundle and manifest as layers), built and pushed at registration with no
 * Docker daemon. The version records the image by digest; Fargate runs that image, and anything
 * else reads the flow's layer from the registry.
 */
import { dirname } from "node:path";
import { type Flow, Storage, TernError } from "@tern/core";
import {
  type BlobStore,
  type BuiltFlow,
  checkSha256,
  decodeManifest,
  encodeManifest,
  type FlowImage,
  importFlowBundle,
  type JsonValue,
  type LoadedFlow,
  type LoadOptions,
  type Manifest,
  type PlannedFlow,
  type StoredManifest,
  sha256Hex,
  slugify,
} from "@tern/core/plugin";
import type { DockerAuthOptions } from "./auth-options.js";
import { CredentialCache, type RegistryCredentials } from "./credentials.js";
import {
  BUNDLE_PATH,
  FLOW_DIR,
  type FlowFiles,
  imageLocation,
  locationDigest,
  MANIFEST_PATH,
  ownImageFlow,
  registryFlow,
} from "./flow-image.js";
import { dependenciesLayer, parseDependency } from "./image/dependencies.js";
import { treeEntries } from "./image/files.js";
import { compressLayer, type Layer, type LayerEntry, type TarLayer, tarLayer } from "./image/layer.js";
import { type LayerToAdd, pushFlowImage } from "./image/push.js";
import { parseImageReference } from "./image/reference.js";
import { NoObjects } from "./no-objects.js";
import {
  checkDockerStorageOptions,
  DEFAULT_BASE_IMAGE,
  DEFAULT_PLATFORM,
  type DockerStorageOptions,
} from "./options.js";
import { RegistryClient } from "./registry/client.js";
import { parsePlatform } from "./registry/platform.js";

/**
 * Flows baked into container images.
 *
 * @example
 * new Flow("thumbnails", {
 *   storage: new DockerStorage({ registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", repository: "tern-flows", dependencies: ["sharp"] }),
 *   environment: new FargateTaskEnvironment({ cpu: 1024, memory: 2048 }),
 * }, build);
 */
export class DockerStorage extends Storage {
  static override readonly type: string = "DockerStorage";
  readonly registry: string;
  readonly repository: string;
  readonly baseImage: string | undefined;
  readonly tag: string | undefined;
  readonly dependencies: readonly string[];
  readonly files: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  readonly platform: "linux/amd64" | "linux/arm64";
  readonly auth: DockerAuthOptions | undefined;
  /** Bundles planned in this process, by flow, until their image is pushed. */
  readonly #bundles = new Map<string, { readonly sha256: string; readonly bytes: Uint8Array }>();
  readonly #builtHere = new Map<string, BuiltFlow>();
  /** The directory of each added flow's file: bare dependency names take the version installed there. */
  readonly #flowDirs = new Map<string, string>();
  readonly #clients = new Map<
    string,
    { credentials: CredentialCache; client: RegistryClient | undefined; of: RegistryCredentials | undefined }
  >();

  constructor(options: DockerStorageOptions) {
    checkDockerStorageOptions(options);
    const dependencies = [...(options.dependencies ?? [])];
    // Dependencies are installed in the image: the bundle imports them instead of inlining them.
    const external = [
      ...new Set([...(options.external ?? []), ...dependencies.map((spec) => parseDependency(spec).name)]),
    ];
    super({ ...(options.prefix === undefined ? {} : { prefix: options.prefix }), external });
    this.registry = options.registry;
    this.repository = options.repository;
    this.baseImage = options.baseImage;
    this.tag = options.tag;
    this.dependencies = Object.freeze(dependencies);
    this.files = Object.freeze({ ...(options.files ?? {}) });
    this.env = Object.freeze({ ...(options.env ?? {}) });
    this.platform = options.platform ?? DEFAULT_PLATFORM;
    this.auth = options.auth;
  }

  protected override createBlobStore(): BlobStore {
    return new NoObjects(`docker://${this.registry}/${this.repository}`);
  }

  protected override jsonOptions(): Record<string, JsonValue> {
    const options: Record<string, JsonValue> = { registry: this.registry, repository: this.repository };
    if (this.baseImage !== undefined) options.baseImage = this.baseImage;
    if (this.tag !== undefined) options.tag = this.tag;
    if (this.dependencies.length > 0) options.dependencies = [...this.dependencies];
    if (Object.keys(this.files).length > 0) options.files = { ...this.files };
    if (Object.keys(this.env).length > 0) options.env = { ...this.env };
    if (this.platform !== DEFAULT_PLATFORM) options.platform = this.platform;
    if (this.auth !== undefined) options.auth = this.auth as unknown as JsonValue;
    return options;
  }

  override containerImage(location: string): FlowImage {
    locationDigest(location, this.registry, this.repository);
    return { reference: location, platform: this.platform };
  }

  override add(flow: Flow): string {
    if (flow.sourceFile !== undefined) this.#flowDirs.set(flow.name, dirname(flow.sourceFile));
    return super.add(flow);
  }

  /** Bundles and checks the flows; their manifests name the bundle's path in the image. */
  override async plan(options: { readonly only?: readonly string[] } = {}): Promise<PlannedFlow[]> {
    const planned = await super.plan(options);
    return planned.map((p) => ({
      ...p,
      manifest: { ...p.manifest, bundle: { ...p.manifest.bundle, key: BUNDLE_PATH } },
    }));
  }

  /** Keeps the bundles for their images: an image holds its manifest, so it is pushed by {@link writeManifest}. */
  override async upload(planned: readonly PlannedFlow[]): Promise<BuiltFlow[]> {
    return planned.map((plan) => {
      this.#bundles.set(plan.name, { sha256: plan.manifest.bundle.sha256, bytes: plan.bytes });
      const built: BuiltFlow = { name: plan.name, manifest: plan.manifest, bytesUploaded: 0 };
      this.#builtHere.set(plan.name, built);
      return built;
    });
  }

  override built(name: string): BuiltFlow | undefined {
    return this.#builtHere.get(name) ?? super.built(name);
  }

  /** Bundles the flows; their images are built and pushed when they are registered (no build records: register with building). */
  override async build(options: { readonly only?: readonly string[] } = {}): Promise<BuiltFlow[]> {
    return this.upload(await this.plan(options));
  }

  /**
   * Builds the flow's image (the base, the dependencies, the files, and the bundle with this
   * manifest) and pushes whatever the repository lacks; an image already there under its
   * content-derived tag sends nothing. The location is the image by digest.
   */
  override async writeManifest(manifest: Manifest): Promise<StoredManifest> {
    const bytes = await encodeManifest(manifest);
    const hash = sha256Hex(bytes);
    const planned = this.#bundles.get(manifest.flow.name);
    const bundle = planned?.sha256 === manifest.bundle.sha256 ? planned.bytes : undefined;
    if (bundle === undefined) {
      throw new TernError(
        "NOT_BUILT",
        `DockerStorage ${this.registry}/${this.repository}: flow "${manifest.flow.name}" was not bundled in this process. A flow image is built where the flow is registered: register with building (the default).`,
      );
    }
    const platform = parsePlatform(this.platform);
    const layers: LayerToAdd[] = [];
    if (this.dependencies.length > 0) {
      const { layer, packages } = await dependenciesLayer({
        dependencies: this.dependencies,
        projectDir: this.#flowDirs.get(manifest.flow.name) ?? process.cwd(),
        platform,
        onProgress: progress,
      });
      layers.push({
        diffId: layer.diffId,
        createdBy: `tern: dependencies ${Object.entries(packages)
          .map(([n, v]) => `${n}@${v}`)
          .join(" ")}`,
        compressed: async () => layer,
        mayExist: true,
      });
    }
    const fileEntries: LayerEntry[] = [];
    for (const [local, inImage] of Object.entries(this.files)) fileEntries.push(...(await treeEntries(local, inImage)));
    if (fileEntries.length > 0) {
      layers.push(toAdd(await tarLayer(fileEntries), `tern: files ${Object.values(this.files).join(" ")}`, true));
    }
    const flowLayer = await tarLayer([
      { kind: "file", path: BUNDLE_PATH, content: bundle },
      { kind: "file", path: MANIFEST_PATH, content: bytes },
      // ES modules resolve packages from the directories above the importing file, up to the root:
      // the bundle, imported from the runner's cache anywhere, finds the dependencies here.
      ...(this.dependencies.length > 0
        ? [{ kind: "symlink" as const, path: "/node_modules", target: "tern/node_modules" }]
        : []),
    ]);
    layers.push(toAdd(flowLayer, `tern: flow ${manifest.flow.name} in ${FLOW_DIR}`, false));
    const base = parseImageReference(this.baseImage ?? DEFAULT_BASE_IMAGE, "baseImage");
    const target = await this.#client(this.registry, this.auth);
    const baseClient = base.registry === this.registry ? target : await this.#client(base.registry, undefined);
    const pushed = await pushFlowImage({
      target,
      repository: this.repository,
      baseClient,
      base,
      platform,
      layers,
      env: this.env,
      labels: { flow: manifest.flow.name, manifestSha256: hash, bundleSha256: manifest.bundle.sha256 },
      tagPrefix: (this.tag ?? slugify(manifest.flow.name)).slice(0, 64),
      onProgress: progress,
    });
    this.#bundles.delete(manifest.flow.name);
    return {
      location: imageLocation(this.registry, this.repository, pushed.digest),
      hash,
      bytesUploaded: pushed.bytesUploaded,
    };
  }

  /** The manifest in the flow image at `location`: from this image's own files when it is that one, else from the registry. */
  override async readManifest(location: string, options: LoadOptions = {}): Promise<Manifest> {
    const files = await this.#flowFiles(location, options);
    return decodeManifest(files.manifest, files.url);
  }

  override async load(location: string, options: LoadOptions = {}): Promise<LoadedFlow> {
    const files = await this.#flowFiles(location, options);
    const manifest = await decodeManifest(files.manifest, files.url);
    const what = options.label ?? `"${manifest.flow.name}"`;
    const flow = await importFlowBundle(await files.bundle(), manifest, {
      what,
      url: `${files.url}${BUNDLE_PATH.slice(FLOW_DIR.length)}`,
      ...(options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir }),
    });
    return { flow, manifest };
  }

  async #flowFiles(location: string, options: LoadOptions): Promise<FlowFiles> {
    const digest = locationDigest(location, this.registry, this.repository);
    const own = options.expectedHash === undefined ? undefined : await ownImageFlow(options.expectedHash);
    const files = own ?? (await registryFlow(await this.#client(this.registry, this.auth), this.repository, digest));
    if (options.expectedHash !== undefined) {
      checkSha256(files.manifest, options.expectedHash, {
        what: options.label ?? location,
        kind: "manifest",
        url: files.url,
      });
    }
    return files;
  }

  /** A client of `registry` with its credentials, made again when they are renewed (ECR's last 12 hours). */
  async #client(registry: string, auth: DockerAuthOptions | undefined): Promise<RegistryClient> {
    let entry = this.#clients.get(registry);
    if (entry === undefined) {
      entry = { credentials: new CredentialCache(registry, auth), client: undefined, of: undefined };
      this.#clients.set(registry, entry);
    }
    const credentials = await entry.credentials.get();
    if (entry.client === undefined || entry.of !== credentials) {
      entry.client = new RegistryClient({
        registry,
        ...(credentials.auth === undefined ? {} : { auth: credentials.auth }),
      });
      entry.of = credentials;
    }
    return entry.client;
  }
}

/** A layer for the image, compressed once when (and only if) the image is pushed. */
function toAdd(layer: TarLayer, createdBy: string, mayExist: boolean): LayerToAdd {
  let compressed: Promise<Layer> | undefined;
  return { diffId: layer.diffId, createdBy, mayExist, compressed: () => (compressed ??= compressLayer(layer)) };
}

function progress(line: string): void {
  process.stderr.write(`tern: ${line}\n`);
}
