import { BlobConflictError, type BlobStore, sha256Hex, TernError } from "@tern/core";

/** Rejects unknown option keys and missing required ones, naming them. */
export function checkOptions(
  driver: string,
  options: unknown,
  allowed: readonly string[],
  required: readonly string[],
): void {
  if (typeof options !== "object" || options === null) {
    throw new TernError("STORAGE_OPTIONS", `${driver}: options must be an object with ${required.join(", ")}.`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TernError(
        "STORAGE_OPTIONS",
        `${driver}: unknown option "${key}". Valid options: ${allowed.join(", ")}.`,
      );
    }
  }
  for (const key of required) {
    const value = (options as Record<string, unknown>)[key];
    if (typeof value !== "string" || value.trim() === "") {
      throw new TernError("STORAGE_OPTIONS", `${driver}: option "${key}" is required (a non-empty string).`);
    }
  }
}

/** An object already exists: the same bytes are success, other bytes a conflict naming it. */
export async function compareExisting(store: BlobStore, key: string, sha256: string): Promise<"exists"> {
  const existing = await store.get(key);
  if (sha256Hex(existing) === sha256) return "exists";
  throw new BlobConflictError(store.describe(key));
}

/** Hex digest to base64, as S3 and Azure want checksums. */
export function hexToBase64(hex: string): string {
  return Buffer.from(hex, "hex").toString("base64");
}

/**
 * Reads a response body into one buffer. With a known length the chunks are copied into a buffer
 * of that size as they arrive, so a large bundle is held once, not once per chunk plus once whole.
 */
export async function readBody(
  body: AsyncIterable<Uint8Array> | undefined,
  length: number | undefined,
): Promise<Uint8Array> {
  if (body === undefined) return new Uint8Array(0);
  if (length !== undefined) {
    const out = new Uint8Array(length);
    let offset = 0;
    for await (const chunk of body) {
      if (offset + chunk.byteLength > length)
        throw new TernError("STORAGE", "the object is longer than its Content-Length", { retryable: true });
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    // A connection cut mid-body: reading again may get it whole.
    if (offset !== length)
      throw new TernError("STORAGE", `the object ended after ${offset} of ${length} bytes`, { retryable: true });
    return out;
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return new Uint8Array(Buffer.concat(chunks));
}

/**
 * Refuses an endpoint that carries credentials (user info, a query such as `?access_token=`, a
 * fragment): endpoints are kept in the storage's JSON, so they would be stored with every flow.
 * The value is not repeated in the message, so the secret does not reach logs either.
 */
export function checkEndpoint(driver: string, option: string, endpoint: unknown): void {
  if (endpoint === undefined) return;
  let url: URL;
  try {
    url = new URL(String(endpoint));
  } catch {
    throw new TernError(
      "STORAGE_OPTIONS",
      `${driver}: ${option} is not a URL (for example https://storage.example.com).`,
    );
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    throw new TernError(
      "STORAGE_OPTIONS",
      `${driver}: ${option} carries credentials or parameters (user info, a query or a fragment); it is stored with every flow, so it may not. Give credentials through the SDK's default chain or the client's credentials option.`,
    );
  }
}
