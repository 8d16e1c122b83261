/**
 * `@tern/storage-docker`: for now, the registry client that Docker storage will push flow images
 * with (the Distribution API v2 over `fetch`: blobs, mounts, manifests, indexes, platforms, basic
 * and bearer-token auth). `DockerStorage` itself comes next (issue 19).
 *
 * @example
 * import { RegistryClient } from "@tern/storage-docker";
 * const client = new RegistryClient({ registry: "127.0.0.1:5000" });
 * await client.ping();
 */
export { RegistryError, type RegistryErrorContext } from "./errors.js";
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
