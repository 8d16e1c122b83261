/** sha256 digests (`sha256:<hex>`) of bytes and of streams as they pass. */
import { createHash } from "node:crypto";

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

/**
 * A pass-through stream that hashes what it passes and, at its end, fails with `mismatch(actual)`
 * when the digest is not `expected`: a reader sees the error before it sees the end.
 */
export function verifyingStream(
  expected: string,
  mismatch: (actual: string, sizeBytes: number) => Error,
): TransformStream<Uint8Array, Uint8Array> {
  const hash = createHash("sha256");
  let size = 0;
  return new TransformStream({
    transform(chunk, controller) {
      hash.update(chunk);
      size += chunk.byteLength;
      controller.enqueue(chunk);
    },
    flush(controller) {
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== expected) controller.error(mismatch(actual, size));
    },
  });
}
