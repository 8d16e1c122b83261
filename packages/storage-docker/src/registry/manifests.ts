/**
 * Manifests of one repository: put (with its media type; the digest is the sha256 of the exact
 * bytes sent), get (any of the four manifest types, digest checked when asked by digest), and the
 * image for a platform, through an index when the reference names one.
 */
import * as z from "zod/mini";
import { RegistryError, where } from "../errors.js";
import { checkDigestHeader } from "./blobs.js";
import { DIGEST_PATTERN, sha256Digest } from "./digest.js";
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  imageIndexSchema,
  imageManifestSchema,
  isIndexType,
  MANIFEST_TYPES,
  type ManifestMediaType,
} from "./media-types.js";
import { type PlatformWanted, selectPlatform } from "./platform.js";
import { type RegistryTransport, repositoryScope } from "./transport.js";

/** A manifest as the registry holds it. */
export type FetchedManifest = {
  readonly digest: string;
  readonly mediaType: string;
  /** The exact bytes (what the digest is of). */
  readonly bytes: Uint8Array;
} & (
  | { readonly kind: "index"; readonly index: ImageIndex }
  | { readonly kind: "manifest"; readonly manifest: ImageManifest }
);

function manifestPath(repository: string, reference: string): string {
  return `/v2/${repository}/manifests/${reference}`;
}

/** Puts a manifest under `reference` (a tag, or its own digest); resolves its descriptor. */
export async function putManifest(
  transport: RegistryTransport,
  repository: string,
  reference: string,
  manifest: ImageManifest | ImageIndex,
  mediaType: ManifestMediaType,
): Promise<Descriptor> {
  // The document names its own media type, as the OCI spec recommends and Docker's requires.
  const bytes = new TextEncoder().encode(JSON.stringify({ ...manifest, mediaType }));
  const digest = sha256Digest(bytes);
  const what = `push manifest ${reference}`;
  const response = await transport.send({
    what,
    repository,
    scopes: [repositoryScope(repository, "pull,push")],
    method: "PUT",
    url: manifestPath(repository, reference),
    headers: { "Content-Type": mediaType },
    body: bytes,
    accept: [201],
  });
  await response.body?.cancel();
  checkDigestHeader(transport, repository, response, digest, what);
  return { mediaType, digest, size: bytes.byteLength };
}

/** The manifest's digest (HEAD), or undefined when the repository has no such tag or digest. */
export async function statManifest(
  transport: RegistryTransport,
  repository: string,
  reference: string,
): Promise<string | undefined> {
  const response = await transport.send({
    what: `check manifest ${reference}`,
    repository,
    scopes: [repositoryScope(repository, "pull")],
    method: "HEAD",
    url: manifestPath(repository, reference),
    headers: { Accept: MANIFEST_TYPES.join(", ") },
    accept: [200, 404],
  });
  if (response.status === 404) return undefined;
  return response.headers.get("docker-content-digest") ?? undefined;
}

/** Gets a manifest or index by tag or digest. */
export async function getManifest(
  transport: RegistryTransport,
  repository: string,
  reference: string,
): Promise<FetchedManifest> {
  const what = `get manifest ${reference}`;
  const context = transport.context(repository);
  const response = await transport.send({
    what,
    repository,
    scopes: [repositoryScope(repository, "pull")],
    method: "GET",
    url: manifestPath(repository, reference),
    headers: { Accept: MANIFEST_TYPES.join(", ") },
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  const digest = sha256Digest(bytes);
  if (DIGEST_PATTERN.test(reference) && digest !== reference) {
    throw new RegistryError(
      "STORAGE_INTEGRITY",
      `${where(context)}: cannot ${what}: the manifest received has digest ${digest}. The registry sent other bytes than asked for; retry.`,
      context,
    );
  }
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new RegistryError("STORAGE", `${where(context)}: cannot ${what}: the manifest is not JSON.`, context, {
      cause: error,
    });
  }
  const declared = (document as { mediaType?: unknown } | null)?.mediaType;
  const mediaType =
    typeof declared === "string" ? declared : (response.headers.get("content-type")?.split(";")[0]?.trim() ?? "");
  if (!(MANIFEST_TYPES as readonly string[]).includes(mediaType)) {
    throw new RegistryError(
      "STORAGE",
      `${where(context)}: cannot ${what}: its media type ${JSON.stringify(mediaType)} is none of ${MANIFEST_TYPES.join(", ")} (a schema 1 manifest or an artifact is not an image tern can use).`,
      context,
    );
  }
  const parsed = isIndexType(mediaType)
    ? imageIndexSchema.safeParse(document)
    : imageManifestSchema.safeParse(document);
  if (!parsed.success) {
    throw new RegistryError(
      "STORAGE",
      `${where(context)}: cannot ${what}: the ${mediaType} document is malformed (${z.prettifyError(parsed.error).replaceAll("\n", " ")}).`,
      context,
    );
  }
  return isIndexType(mediaType)
    ? { kind: "index", digest, mediaType, bytes, index: parsed.data as ImageIndex }
    : { kind: "manifest", digest, mediaType, bytes, manifest: parsed.data as ImageManifest };
}

/** The image manifest for `platform`: `reference`'s own, or the one its index lists for the platform. */
export async function getImageManifest(
  transport: RegistryTransport,
  repository: string,
  reference: string,
  platform: PlatformWanted,
): Promise<FetchedManifest & { readonly kind: "manifest" }> {
  const fetched = await getManifest(transport, repository, reference);
  if (fetched.kind === "manifest") return fetched;
  const chosen = selectPlatform(fetched.index, platform, transport.context(repository), reference);
  const image = await getManifest(transport, repository, chosen.digest);
  if (image.kind !== "manifest") {
    const context = transport.context(repository);
    throw new RegistryError(
      "STORAGE",
      `${where(context)}: image ${reference} lists another index (${chosen.digest}) for its platform, not an image manifest.`,
      context,
    );
  }
  return image;
}
