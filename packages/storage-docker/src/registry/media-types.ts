/**
 * The manifest media types of the OCI image spec and of Docker's v2 schema 2, and the shapes of
 * the documents they name, checked with zod where they arrive from a registry.
 */
import * as z from "zod/mini";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/** The manifest types a client accepts, in the `Accept` header of a manifest GET. */
export const MANIFEST_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST] as const;
export type ManifestMediaType = (typeof MANIFEST_TYPES)[number];

export function isIndexType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

/** The platform an image runs on (`os`/`architecture`/`variant`), as an index lists it. */
export const platformSchema = z.object({
  os: z.string(),
  architecture: z.string(),
  variant: z.optional(z.string()),
  "os.version": z.optional(z.string()),
  "os.features": z.optional(z.array(z.string())),
});
export type Platform = z.infer<typeof platformSchema>;

/** A content descriptor: what a manifest says about a blob or another manifest. */
export const descriptorSchema = z.object({
  mediaType: z.string(),
  digest: z.string().check(z.regex(/^sha256:[a-f0-9]{64}$/)),
  size: z.number().check(z.int(), z.nonnegative()),
  platform: z.optional(platformSchema),
  annotations: z.optional(z.record(z.string(), z.string())),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

/** An image manifest (OCI, or Docker v2 schema 2): one config and its layers. */
export const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  annotations: z.optional(z.record(z.string(), z.string())),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

/** An index (OCI) or manifest list (Docker): one manifest per platform. */
export const imageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  manifests: z.array(descriptorSchema),
  annotations: z.optional(z.record(z.string(), z.string())),
});
export type ImageIndex = z.infer<typeof imageIndexSchema>;
