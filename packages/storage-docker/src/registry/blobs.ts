/**
 * Blobs (layers and configs) of one repository: existence (HEAD), upload (POST, then one PUT with
 * the digest, or PATCHes of chunks for a large blob), cross-repository mount, and a streamed,
 * digest-verified read. https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { RegistryError, where } from "../errors.js";
import { sha256Digest, verifyingStream } from "./digest.js";
import { type RegistryTransport, repositoryScope } from "./transport.js";

/** A blob as a manifest names it. */
export interface BlobRef {
  readonly digest: string;
  readonly sizeBytes: number;
}

/** What pushing a blob did: nothing (the repository had it), a mount from another repository, or an upload. */
export type BlobPush = BlobRef & { readonly outcome: "exists" | "mounted" | "uploaded" };

/** Blobs larger than this are sent in PATCHes of this size. @default 16 MiB */
export const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

function blobPath(repository: string, digest: string): string {
  return `/v2/${repository}/blobs/${digest}`;
}

/** Whether the repository holds the blob (HEAD), and its size when it does. */
export async function statBlob(
  transport: RegistryTransport,
  repository: string,
  digest: string,
): Promise<BlobRef | undefined> {
  const response = await transport.send({
    what: `check blob ${digest}`,
    repository,
    scopes: [repositoryScope(repository, "pull")],
    method: "HEAD",
    url: blobPath(repository, digest),
    accept: [200, 404],
  });
  if (response.status === 404) return undefined;
  return { digest, sizeBytes: Number(response.headers.get("content-length") ?? Number.NaN) };
}

/**
 * Asks the registry to link a blob of `from` into `repository` without sending it. False when it
 * could not (the blob is not in `from`, or the registry does not mount): the upload session it
 * opened instead is cancelled.
 */
export async function mountBlob(
  transport: RegistryTransport,
  repository: string,
  digest: string,
  from: string,
): Promise<boolean> {
  const query = new URLSearchParams({ mount: digest, from });
  const response = await transport.send({
    what: `mount blob ${digest} from ${JSON.stringify(from)}`,
    repository,
    scopes: [repositoryScope(repository, "pull,push"), repositoryScope(from, "pull")],
    method: "POST",
    url: `/v2/${repository}/blobs/uploads/?${query}`,
    accept: [201, 202],
  });
  await response.body?.cancel();
  if (response.status === 201) return true;
  const location = response.headers.get("location");
  if (location !== null) {
    await transport
      .send({
        what: "cancel an upload",
        repository,
        scopes: [repositoryScope(repository, "pull,push")],
        method: "DELETE",
        url: location,
        accept: [204, 404],
      })
      .then((cancelled) => cancelled.body?.cancel())
      // A session left open expires on the registry: nothing is lost.
      .catch(() => undefined);
  }
  return false;
}

/** Uploads `content` (POST, then a PUT with the digest, or PATCHes past `chunkBytes`), whether or not the repository has it. */
export async function uploadBlob(
  transport: RegistryTransport,
  repository: string,
  content: Uint8Array,
  chunkBytes = DEFAULT_CHUNK_BYTES,
  digest = sha256Digest(content),
): Promise<BlobRef> {
  return uploadBlobStream(transport, repository, digest, [content], chunkBytes);
}

/**
 * Uploads a blob of digest `digest` from `chunks` as they come, holding at most `chunkBytes` of it:
 * one PUT when it all fits in that, else PATCHes of `chunkBytes` and a closing PUT. A stream that
 * fails (for instance `openBlob`'s, at a digest mismatch) cancels the upload session.
 */
export async function uploadBlobStream(
  transport: RegistryTransport,
  repository: string,
  digest: string,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  chunkBytes = DEFAULT_CHUNK_BYTES,
): Promise<BlobRef> {
  const scopes = [repositoryScope(repository, "pull,push")];
  const what = `upload blob ${digest}`;
  const start = await transport.send({
    what,
    repository,
    scopes,
    method: "POST",
    url: `/v2/${repository}/blobs/uploads/`,
    accept: [202],
  });
  await start.body?.cancel();
  let location = uploadLocation(transport, repository, start, what);
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let sent = 0;
  const take = (bytes: number): Uint8Array => {
    const out = new Uint8Array(bytes);
    let filled = 0;
    while (filled < bytes) {
      const head = pending[0] as Uint8Array;
      const part = head.subarray(0, Math.min(head.byteLength, bytes - filled));
      out.set(part, filled);
      filled += part.byteLength;
      if (part.byteLength === head.byteLength) pending.shift();
      else pending[0] = head.subarray(part.byteLength);
    }
    pendingBytes -= bytes;
    return out;
  };
  const patch = async (chunk: Uint8Array) => {
    const patched = await transport.send({
      what,
      repository,
      scopes,
      method: "PATCH",
      url: location,
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Range": `${sent}-${sent + chunk.byteLength - 1}`,
        "Content-Length": String(chunk.byteLength),
      },
      body: chunk,
      accept: [202],
    });
    await patched.body?.cancel();
    location = uploadLocation(transport, repository, patched, what);
    sent += chunk.byteLength;
  };
  try {
    for await (const chunk of chunks) {
      pending.push(chunk);
      pendingBytes += chunk.byteLength;
      // More than a chunk held: send one (a blob of exactly one chunk still goes in one PUT).
      while (pendingBytes > chunkBytes) await patch(take(chunkBytes));
    }
    if (sent > 0 && pendingBytes > 0) await patch(take(pendingBytes));
  } catch (error) {
    // Leave no upload session behind (the registry would expire it, later).
    await transport
      .send({ what: `cancel ${what}`, repository, scopes, method: "DELETE", url: location, accept: [204, 404] })
      .then((response) => response.body?.cancel())
      .catch(() => undefined);
    throw error;
  }
  const body = take(pendingBytes);
  pending = [];
  location.searchParams.set("digest", digest);
  const done = await transport.send({
    what,
    repository,
    scopes,
    method: "PUT",
    url: location,
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(body.byteLength) },
    body,
    accept: [201],
  });
  await done.body?.cancel();
  checkDigestHeader(transport, repository, done, digest, what);
  return { digest, sizeBytes: sent + body.byteLength };
}

/**
 * Makes sure the repository holds `content`, sending as little as it can: nothing when it has the
 * blob, a mount when one of `mountFrom` has it, else an upload.
 */
export async function pushBlob(
  transport: RegistryTransport,
  repository: string,
  content: Uint8Array,
  options: { readonly mountFrom?: readonly string[]; readonly chunkBytes?: number; readonly digest?: string } = {},
): Promise<BlobPush> {
  // A digest the caller computed from these bytes spares hashing them again (the registry checks it).
  const digest = options.digest ?? sha256Digest(content);
  const sizeBytes = content.byteLength;
  if ((await statBlob(transport, repository, digest)) !== undefined) return { digest, sizeBytes, outcome: "exists" };
  for (const from of options.mountFrom ?? []) {
    if (from !== repository && (await mountBlob(transport, repository, digest, from))) {
      return { digest, sizeBytes, outcome: "mounted" };
    }
  }
  await uploadBlob(transport, repository, content, options.chunkBytes, digest);
  return { digest, sizeBytes, outcome: "uploaded" };
}

/**
 * The blob's bytes as a stream that fails with a `STORAGE_INTEGRITY` error at its end when they do
 * not have the digest asked for (a reader must consume it to the end to know).
 */
export async function openBlob(
  transport: RegistryTransport,
  repository: string,
  digest: string,
): Promise<ReadableStream<Uint8Array>> {
  const what = `get blob ${digest}`;
  const response = await transport.send({
    what,
    repository,
    scopes: [repositoryScope(repository, "pull")],
    method: "GET",
    url: blobPath(repository, digest),
  });
  const context = transport.context(repository);
  if (response.body === null) {
    throw new RegistryError("STORAGE", `${where(context)}: cannot ${what}: the answer has no body.`, context);
  }
  return response.body.pipeThrough(
    verifyingStream(
      digest,
      (actual, sizeBytes) =>
        new RegistryError(
          "STORAGE_INTEGRITY",
          `${where(context)}: cannot ${what}: the ${sizeBytes} bytes received have digest ${actual}. The registry (or something between) changed or cut the blob; retry, and if it persists, push the blob again.`,
          context,
        ),
    ),
  );
}

/** The whole blob, digest verified. */
export async function readBlob(transport: RegistryTransport, repository: string, digest: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of await openBlob(transport, repository, digest)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function uploadLocation(transport: RegistryTransport, repository: string, response: Response, what: string): URL {
  const location = response.headers.get("location");
  if (location === null) {
    const context = transport.context(repository);
    throw new RegistryError(
      "STORAGE",
      `${where(context)}: cannot ${what}: the registry answered ${response.status} with no Location for the upload.`,
      context,
    );
  }
  return new URL(location, transport.baseUrl);
}

/** A registry that reports another digest than the one computed here stored other bytes. */
export function checkDigestHeader(
  transport: RegistryTransport,
  repository: string,
  response: Response,
  expected: string,
  what: string,
): void {
  const reported = response.headers.get("docker-content-digest");
  if (reported !== null && reported !== expected) {
    const context = transport.context(repository);
    throw new RegistryError(
      "STORAGE_INTEGRITY",
      `${where(context)}: cannot ${what}: the registry reports digest ${reported}, not ${expected}.`,
      context,
    );
  }
}
