/**
 * Pushing a flow image with no daemon: read the base's manifest (for the platform) and config,
 * plan the image, and when its content-derived tag is not in the repository yet, make sure every
 * blob is there (the base's layers by a cross-repository mount within one registry, or copied from
 * the base's registry, each only when missing) before putting the manifest under the tag.
 */
import { RegistryError } from "../errors.js";
import type { RegistryClient } from "../registry/client.js";
import { formatPlatform, type PlatformWanted } from "../registry/platform.js";
import { type FlowImageLabels, flowImageManifest, planFlowImage } from "./config.js";
import type { Layer } from "./layer.js";
import type { ImageReference } from "./reference.js";

/** A layer to add: its diff id plans the image; it is compressed only when the image is pushed. */
export interface LayerToAdd {
  readonly diffId: string;
  readonly createdBy: string;
  readonly compressed: () => Promise<Layer>;
  /** Ask the registry first whether it has the layer (a dependencies or files layer often is there); a flow's own layer never is. */
  readonly mayExist: boolean;
}

/** What to push. */
export interface FlowImagePush {
  readonly target: RegistryClient;
  readonly repository: string;
  /** A client of the base's registry (the target's when they are one). */
  readonly baseClient: RegistryClient;
  readonly base: ImageReference;
  readonly platform: PlatformWanted;
  readonly layers: readonly LayerToAdd[];
  readonly env: Readonly<Record<string, string>>;
  readonly labels: FlowImageLabels;
  readonly tagPrefix: string;
  readonly onProgress?: (line: string) => void;
}

/** What a push did. */
export interface PushedImage {
  readonly digest: string;
  readonly tag: string;
  /** Bytes sent: blobs uploaded and the manifest; 0 when the image was there already. */
  readonly bytesUploaded: number;
  /** How each blob got there, for tests and benchmarks. */
  readonly blobs: { readonly uploaded: number; readonly mounted: number; readonly existing: number };
}

export async function pushFlowImage(push: FlowImagePush): Promise<PushedImage> {
  const { target, repository, baseClient, base } = push;
  const { baseImage, configBytes } = await readBase(push);
  const plan = planFlowImage(
    { manifest: baseImage.manifest, mediaType: baseImage.mediaType, configBytes },
    push.layers,
    push.env,
    push.labels,
    push.tagPrefix,
  );
  // The tag comes from the uncompressed content: an unchanged flow is known before any gzip.
  const existing = await target.statManifest(repository, plan.tag);
  if (existing !== undefined) {
    return { digest: existing, tag: plan.tag, bytesUploaded: 0, blobs: { uploaded: 0, mounted: 0, existing: 0 } };
  }
  // Compression (on libuv's threads) overlaps the base layers' requests.
  const compressing = Promise.all(push.layers.map((layer) => layer.compressed()));
  compressing.catch(() => undefined);
  const counts = { uploaded: 0, mounted: 0, existing: 0 };
  let bytesUploaded = 0;
  const sameRegistry = baseClient.registry === target.registry;
  const baseLayers = baseImage.manifest.layers;
  await Promise.all(
    baseLayers.map(async (layer, i) => {
      if ((await target.statBlob(repository, layer.digest)) !== undefined) {
        counts.existing++;
        return;
      }
      if (sameRegistry && (await target.mountBlob(repository, layer.digest, base.repository))) {
        counts.mounted++;
        return;
      }
      push.onProgress?.(
        `copying base layer ${i + 1}/${baseLayers.length} (${megabytes(layer.size)}) from ${base.registry}/${base.repository}...`,
      );
      // Streamed from one registry to the other: a base's layer can be larger than memory allows.
      const copied = await target.uploadBlobStream(
        repository,
        layer.digest,
        await baseClient.openBlob(base.repository, layer.digest),
      );
      counts.uploaded++;
      bytesUploaded += copied.sizeBytes;
    }),
  );
  const compressed = await compressing;
  for (const [i, layer] of compressed.entries()) {
    const { createdBy, mayExist } = push.layers[i] as LayerToAdd;
    if (layer.sizeBytes > 1024 * 1024) push.onProgress?.(`pushing ${createdBy} (${megabytes(layer.sizeBytes)})...`);
    if (mayExist) {
      const pushed = await target.pushBlob(repository, layer.bytes, { digest: layer.digest });
      counts[pushed.outcome === "exists" ? "existing" : pushed.outcome]++;
      if (pushed.outcome === "uploaded") bytesUploaded += pushed.sizeBytes;
    } else {
      await target.uploadBlob(repository, layer.bytes, { digest: layer.digest });
      counts.uploaded++;
      bytesUploaded += layer.sizeBytes;
    }
  }
  // The config names this image's layers: no other image has it.
  await target.uploadBlob(repository, plan.configBytes, { digest: plan.configDigest });
  counts.uploaded++;
  bytesUploaded += plan.configBytes.byteLength;
  const descriptor = await target.putManifest(
    repository,
    plan.tag,
    flowImageManifest(plan, compressed),
    plan.mediaType,
  );
  bytesUploaded += descriptor.size;
  return { digest: descriptor.digest, tag: plan.tag, bytesUploaded, blobs: counts };
}

/**
 * Bases read in this process, for a minute: registering several flows on one base reads it once.
 * A tag moved meanwhile is seen a minute later at most.
 */
const bases = new Map<string, { readonly at: number; readonly read: Promise<BaseRead> }>();
const BASE_TTL_MS = 60_000;

interface BaseRead {
  readonly baseImage: Awaited<ReturnType<RegistryClient["getImageManifest"]>>;
  readonly configBytes: Uint8Array;
}

/** The base's image manifest for the platform and its config, checked to be of that platform. */
function readBase(push: FlowImagePush): Promise<BaseRead> {
  const { baseClient, base, platform } = push;
  const key = `${base.registry}/${base.repository}:${base.reference} ${formatPlatform(platform)}`;
  const cached = bases.get(key);
  if (cached !== undefined && Date.now() - cached.at < BASE_TTL_MS) return cached.read;
  const read = (async () => {
    const baseImage = await baseClient.getImageManifest(base.repository, base.reference, platform).catch((error) => {
      throw baseError(error, push);
    });
    const configBytes = await baseClient.readBlob(base.repository, baseImage.manifest.config.digest);
    checkBasePlatform(configBytes, push);
    return { baseImage, configBytes };
  })();
  bases.set(key, { at: Date.now(), read });
  read.catch(() => bases.delete(key));
  return read;
}

/** A base that cannot be read, said as the base option's problem. */
function baseError(error: unknown, push: FlowImagePush): unknown {
  if (!(error instanceof RegistryError)) return error;
  const image = `${push.base.registry}/${push.base.repository}:${push.base.reference}`;
  if (error.status === 404) {
    return new RegistryError(
      "STORAGE_OPTIONS",
      `DockerStorage: the base image ${image} does not exist (${error.registryCode ?? "404"}). Check baseImage's repository and tag, and that the registry holds it.`,
      { registry: push.base.registry, repository: push.base.repository },
      {
        cause: error,
        status: error.status,
        ...(error.registryCode === undefined ? {} : { registryCode: error.registryCode }),
      },
    );
  }
  return error;
}

/** A single-platform base (no index) must be of the platform asked for: its config says which it is. */
function checkBasePlatform(configBytes: Uint8Array, push: FlowImagePush): void {
  const config = JSON.parse(new TextDecoder().decode(configBytes)) as { os?: unknown; architecture?: unknown };
  const { os, architecture } = push.platform;
  if (config.os === os && config.architecture === architecture) return;
  const image = `${push.base.registry}/${push.base.repository}:${push.base.reference}`;
  throw new RegistryError(
    "STORAGE_OPTIONS",
    `DockerStorage: the base image ${image} is for ${String(config.os)}/${String(config.architecture)}, not ${formatPlatform(push.platform)}. Set platform to ${String(config.os)}/${String(config.architecture)}, or use a base built for ${formatPlatform(push.platform)} (or a multi-platform one).`,
    { registry: push.base.registry, repository: push.base.repository },
  );
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
