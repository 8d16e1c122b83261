/**
 * Where a flow image keeps its flow, and reading it back: the bundle and the manifest at fixed
 * paths of the image's last layer. A runner inside the image (Fargate) reads them from its own
 * file system; anything else (the agent, a local runner) reads the layer from the registry. Either
 * way the manifest's sha256 is the one the backend recorded, and the bundle's the manifest's.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { NotFoundError, TernError } from "@tern/core";
import { RegistryError } from "./errors.js";
import { readLayerFiles } from "./image/layer.js";
import type { RegistryClient } from "./registry/client.js";
import { DIGEST_PATTERN, sha256Digest } from "./registry/digest.js";

/** The directory of the flow in its image. */
export const FLOW_DIR = "/tern/flow";
export const BUNDLE_PATH = `${FLOW_DIR}/bundle.mjs`;
export const MANIFEST_PATH = `${FLOW_DIR}/manifest.json`;

/** Where a runner looks for its own image's flow: `TERN_FLOW_DIR` (tests), else {@link FLOW_DIR}. */
export function imageFlowDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TERN_FLOW_DIR ?? FLOW_DIR;
}

/** A flow version's location: `<registry>/<repository>@sha256:<hex>`. */
export function imageLocation(registry: string, repository: string, digest: string): string {
  return `${registry}/${repository}@${digest}`;
}

/** The digest of a location of this registry and repository; anything else is refused, naming both. */
export function locationDigest(location: string, registry: string, repository: string): string {
  const at = location.lastIndexOf("@");
  const digest = location.slice(at + 1);
  if (at === -1 || location.slice(0, at) !== `${registry}/${repository}` || !DIGEST_PATTERN.test(digest)) {
    throw new TernError(
      "STORAGE_OPTIONS",
      `DockerStorage ${registry}/${repository}: ${JSON.stringify(location)} is not an image of this repository (${registry}/${repository}@sha256:<digest>). The flow version names another storage: register the flow again.`,
    );
  }
  return digest;
}

/** A flow's files, as read from an image. */
export interface FlowFiles {
  readonly manifest: Uint8Array;
  readonly bundle: () => Promise<Uint8Array>;
  /** Where they were read, for messages. */
  readonly url: string;
}

/**
 * The flow of the image this process runs in, when it is the one wanted: its manifest's sha256 is
 * `expectedHash`. Undefined when there is no such file or it holds another flow.
 */
export async function ownImageFlow(expectedHash: string, dir = imageFlowDir()): Promise<FlowFiles | undefined> {
  let manifest: Uint8Array;
  try {
    manifest = await readFile(join(dir, "manifest.json"));
  } catch {
    return undefined;
  }
  if (sha256Digest(manifest) !== `sha256:${expectedHash}`) return undefined;
  return {
    manifest,
    bundle: async () => new Uint8Array(await readFile(join(dir, "bundle.mjs"))),
    url: `file://${dir}`,
  };
}

const layerCache = new Map<string, { manifest: Uint8Array; bundle: Uint8Array }>();
const LAYER_CACHE_ENTRIES = 32;

/** The flow layer of the image `digest` (its last layer), every byte digest-checked; kept in this process. */
export async function registryFlow(client: RegistryClient, repository: string, digest: string): Promise<FlowFiles> {
  const url = `${client.registry}/${repository}@${digest}`;
  let files = layerCache.get(url);
  if (files === undefined) {
    const image = await client.getManifest(repository, digest).catch((error: unknown) => {
      if (error instanceof RegistryError && error.status === 404) {
        throw new NotFoundError(
          "blob",
          url,
          `Flow image ${url} is not in the registry (deleted, or removed by a lifecycle rule). Register the flow again to push it.`,
          { cause: error },
        );
      }
      throw error;
    });
    const last = image.kind === "manifest" ? image.manifest.layers.at(-1) : undefined;
    if (last === undefined) {
      throw new TernError(
        "STORAGE_INTEGRITY",
        `${url} is not a flow image: it has no layers. Register the flow again.`,
      );
    }
    const found = await readLayerFiles(await client.readBlob(repository, last.digest), [MANIFEST_PATH, BUNDLE_PATH]);
    const manifest = found.get(MANIFEST_PATH);
    const bundle = found.get(BUNDLE_PATH);
    if (manifest === undefined || bundle === undefined) {
      throw new TernError(
        "STORAGE_INTEGRITY",
        `${url} is not a flow image: its last layer holds no ${manifest === undefined ? MANIFEST_PATH : BUNDLE_PATH}. Register the flow again.`,
      );
    }
    files = { manifest, bundle };
    if (layerCache.size >= LAYER_CACHE_ENTRIES) layerCache.delete(layerCache.keys().next().value as string);
    layerCache.set(url, files);
  }
  const { manifest, bundle } = files;
  return { manifest, bundle: async () => bundle, url };
}
