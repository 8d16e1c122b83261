/**
 * A flow image's config and manifest from its base's (pure: no I/O). The base's config is kept as
 * it is (Env, Entrypoint, Cmd, User, WorkingDir, and fields tern does not know), with the `env`
 * given added to Env, tern's labels added, and tern's layers appended to `rootfs.diff_ids` and
 * `history`. Times are the epoch, so equal inputs give equal bytes. The image's tag is derived
 * from the config's digest, which covers the base and every layer's uncompressed content.
 */
import { sha256Digest } from "../registry/digest.js";
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  type ImageManifest,
  type ManifestMediaType,
  OCI_CONFIG,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
} from "../registry/media-types.js";
import type { Layer } from "./layer.js";

/** The base image as read from its registry. */
export interface BaseImage {
  readonly manifest: ImageManifest;
  readonly mediaType: string;
  /** The config's exact bytes (what its digest is of). */
  readonly configBytes: Uint8Array;
}

/** A layer tern adds, by its uncompressed content's digest, with the words its history entry gives. */
export interface AddedLayer {
  readonly diffId: string;
  readonly createdBy: string;
}

/** The image's config and tag: known before any layer is compressed. */
export interface FlowImagePlan {
  readonly configBytes: Uint8Array;
  readonly configDigest: string;
  readonly mediaType: ManifestMediaType;
  readonly tag: string;
  /** The base's manifest and media type family, for {@link flowImageManifest}. */
  readonly base: BaseImage;
}

const EPOCH = "1970-01-01T00:00:00Z";

/** Labels tern puts on a flow image: what it holds, for whoever inspects it (`crane config`, the ECR console). */
export interface FlowImageLabels {
  readonly flow: string;
  readonly manifestSha256: string;
  readonly bundleSha256: string;
}

/** The flow image's config on `base` with `layers` appended and `env` added, tagged `<tagPrefix>-<hash>`. */
export function planFlowImage(
  base: BaseImage,
  layers: readonly AddedLayer[],
  env: Readonly<Record<string, string>>,
  labels: FlowImageLabels,
  tagPrefix: string,
): FlowImagePlan {
  const parsed = JSON.parse(new TextDecoder().decode(base.configBytes)) as Record<string, unknown>;
  const runConfig = { ...((parsed.config as Record<string, unknown> | undefined) ?? {}) };
  runConfig.Env = mergeEnv((runConfig.Env as string[] | undefined) ?? [], env);
  runConfig.Labels = {
    ...((runConfig.Labels as Record<string, string> | undefined) ?? {}),
    "dev.tern.flow": labels.flow,
    "dev.tern.manifest-sha256": labels.manifestSha256,
    "dev.tern.bundle-sha256": labels.bundleSha256,
  };
  const rootfs = (parsed.rootfs as { diff_ids?: string[] } | undefined) ?? {};
  const config = {
    ...parsed,
    created: EPOCH,
    config: runConfig,
    rootfs: { type: "layers", diff_ids: [...(rootfs.diff_ids ?? []), ...layers.map((l) => l.diffId)] },
    history: [
      ...((parsed.history as unknown[] | undefined) ?? []),
      ...layers.map((l) => ({ created: EPOCH, created_by: l.createdBy, comment: "tern" })),
    ],
  };
  const configBytes = new TextEncoder().encode(JSON.stringify(config));
  const configDigest = sha256Digest(configBytes);
  const docker = base.mediaType === DOCKER_MANIFEST;
  return {
    configBytes,
    configDigest,
    mediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST,
    tag: `${tagPrefix}-${configDigest.slice("sha256:".length, "sha256:".length + 32)}`,
    base,
  };
}

/** The image manifest of a plan, once its layers are compressed (in the plan's order). */
export function flowImageManifest(plan: FlowImagePlan, layers: readonly Layer[]): ImageManifest {
  // The base's family of media types: a Docker v2 manifest gets Docker's layer and config types.
  const docker = plan.mediaType === DOCKER_MANIFEST;
  return {
    schemaVersion: 2,
    config: {
      mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG,
      digest: plan.configDigest,
      size: plan.configBytes.byteLength,
    },
    layers: [
      ...plan.base.manifest.layers,
      ...layers.map((layer) => ({
        mediaType: docker ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP,
        digest: layer.digest,
        size: layer.sizeBytes,
      })),
    ],
  };
}

/** Env entries (`NAME=value`) with `added` set: a name already there takes the new value in place. */
function mergeEnv(entries: readonly string[], added: Readonly<Record<string, string>>): string[] {
  const nameOf = (entry: string) => (entry.includes("=") ? entry.slice(0, entry.indexOf("=")) : entry);
  const result = entries.filter((entry) => !Object.hasOwn(added, nameOf(entry)));
  for (const name of Object.keys(added).sort()) result.push(`${name}=${added[name]}`);
  return result;
}
