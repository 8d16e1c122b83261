/**
 * Base images for the Docker storage's tests, made here and pushed with plain `fetch` calls of
 * the Distribution API (not with the client under test): small layers (a tar with one file naming
 * the platform), an OCI config with Env, Entrypoint and User, one manifest per platform, and an
 * index when there are several platforms.
 */
import { createHash } from "node:crypto";
import { buffer } from "node:stream/consumers";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";

/** A base image as pushed. */
export interface BaseImage {
  /** `host/repository:tag`, as `baseImage` takes it. */
  readonly reference: string;
  /** The digest of what the tag names (the index when several platforms). */
  readonly digest: string;
  /** Every layer digest pushed, by platform. */
  readonly layers: Readonly<Record<string, readonly string[]>>;
  /** The base's own Env and Entrypoint. */
  readonly env: readonly string[];
  readonly entrypoint: readonly string[];
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

const digestOf = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function tarOf(files: Record<string, string>): Promise<Uint8Array> {
  const tar = pack();
  const out = buffer(tar);
  for (const [name, content] of Object.entries(files)) {
    tar.entry({ name, mtime: new Date(0), mode: 0o644, uid: 0, gid: 0 }, content);
  }
  tar.finalize();
  return new Uint8Array(await out);
}

async function pushBlob(endpoint: string, repository: string, bytes: Uint8Array): Promise<string> {
  const digest = digestOf(bytes);
  const start = await fetch(`${endpoint}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202)
    throw new Error(`starting an upload to ${repository}: HTTP ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get("location") ?? "", endpoint);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: bytes,
  });
  if (put.status !== 201)
    throw new Error(`uploading ${digest} to ${repository}: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

async function putManifest(endpoint: string, repository: string, tag: string, mediaType: string, doc: object) {
  const bytes = new TextEncoder().encode(JSON.stringify({ ...doc, mediaType }));
  const response = await fetch(`${endpoint}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: bytes,
  });
  if (response.status !== 201)
    throw new Error(`putting ${repository}:${tag}: HTTP ${response.status} ${await response.text()}`);
  return { digest: digestOf(bytes), size: bytes.byteLength };
}

/**
 * Pushes a base image for `platforms` (`linux/amd64`, `linux/arm64`) to `repository:tag` of the
 * registry at `endpoint` (`http://127.0.0.1:<port>`, anonymous); two layers per platform.
 */
export async function pushBaseImage(
  endpoint: string,
  repository: string,
  /** `marker` goes into the layers, so that bases of one shape get layers of their own. */
  options: { readonly tag?: string; readonly platforms?: readonly string[]; readonly marker?: string } = {},
): Promise<BaseImage> {
  const tag = options.tag ?? "latest";
  const platforms = options.platforms ?? ["linux/amd64", "linux/arm64"];
  const env = ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=22.0.0-test"];
  const entrypoint = ["docker-entrypoint.sh"];
  const layers: Record<string, string[]> = {};
  const manifests: Array<{ mediaType: string; digest: string; size: number; platform: object }> = [];
  let single: { digest: string } | undefined;
  for (const platform of platforms) {
    const [os, architecture] = platform.split("/") as [string, string];
    const tars = [
      await tarOf({ "etc/base-release": `test base for ${platform}${options.marker ?? ""}\n` }),
      await tarOf({ "usr/local/bin/docker-entrypoint.sh": `#!/bin/sh\n# ${options.marker ?? ""}\nexec "$@"\n` }),
    ];
    const gzipped = tars.map((t) => new Uint8Array(gzipSync(t)));
    layers[platform] = [];
    for (const bytes of gzipped) layers[platform].push(await pushBlob(endpoint, repository, bytes));
    const config = new TextEncoder().encode(
      JSON.stringify({
        architecture,
        os,
        created: "2026-01-01T00:00:00Z",
        config: { Env: env, Entrypoint: entrypoint, Cmd: ["node"], User: "node", WorkingDir: "/home/node" },
        rootfs: { type: "layers", diff_ids: tars.map(digestOf) },
        history: tars.map((_, i) => ({ created: "2026-01-01T00:00:00Z", created_by: `test layer ${i}` })),
      }),
    );
    const configDigest = await pushBlob(endpoint, repository, config);
    const manifest = {
      schemaVersion: 2,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.byteLength },
      layers: gzipped.map((bytes, i) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: layers[platform]?.[i] as string,
        size: bytes.byteLength,
      })),
    };
    const reference = platforms.length === 1 ? tag : `${tag}-${architecture}`;
    const put = await putManifest(endpoint, repository, reference, OCI_MANIFEST, manifest);
    single = put;
    manifests.push({ mediaType: OCI_MANIFEST, ...put, platform: { os, architecture } });
  }
  const digest =
    platforms.length === 1
      ? (single as { digest: string }).digest
      : (await putManifest(endpoint, repository, tag, OCI_INDEX, { schemaVersion: 2, manifests })).digest;
  const host = new URL(endpoint).host;
  return { reference: `${host}/${repository}:${tag}`, digest, layers, env, entrypoint };
}
