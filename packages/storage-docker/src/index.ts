/**
 * `@tern/storage-docker`: `DockerStorage` (flows baked into OCI images, built and pushed with no
 * Docker daemon) and the registry client it pushes with (the Distribution API v2 over `fetch`).
 * Importing it registers the `DockerStorage` type, so that stored flows rebuild their storage from
 * its JSON.
 *
 * @example
 * import { DockerStorage } from "@tern/storage-docker";
 * new Flow("etl", { storage: new DockerStorage({ registry: "ghcr.io", repository: "acme/flows", auth: { username: "ci", passwordEnv: "GHCR_TOKEN" } }) }, build);
 */
import { registerStorageType } from "@tern/core/plugin";
import { DockerStorage } from "./docker-storage.js";
import type { DockerStorageOptions } from "./options.js";

export { DockerStorage } from "./docker-storage.js";
export { RegistryError, type RegistryErrorContext } from "./errors.js";
export { BUNDLE_PATH, FLOW_DIR, MANIFEST_PATH } from "./flow-image.js";
export type { DockerStorageOptions } from "./options.js";
export type { RegistryAuth } from "./registry/auth.js";
export type { BlobPush, BlobRef } from "./registry/blobs.js";
export { RegistryClient, type RegistryClientOptions } from "./registry/client.js";
export { sha256Digest } from "./registry/digest.js";
export { registryBaseUrl } from "./registry/endpoint.js";
export type { FetchedManifest } from "./registry/manifests.js";
export {
  type Descriptor,
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  type ImageIndex,
  type ImageManifest,
  type ManifestMediaType,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
  type Platform,
} from "./registry/media-types.js";
export { formatPlatform, type PlatformWanted, parsePlatform, selectPlatform } from "./registry/platform.js";

registerStorageType(DockerStorage.type, (options) => new DockerStorage(options as unknown as DockerStorageOptions));
