import { TernError } from "@tern/core";

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
