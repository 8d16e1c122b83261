/**
 * What a build is and how a flow's name becomes part of its keys: shared by the storage and by
 * the build records (`prebuilt.ts`), which must not import the storage class.
 */
import { sha256Hex } from "./blob-store.js";
import type { Manifest } from "./manifest-schema.js";

/** A flow bundled into storage by `build()`; `register` writes its final manifest. */
export interface BuiltFlow {
  readonly name: string;
  readonly manifest: Manifest;
  /** Bytes this build uploaded for the flow's bundle: 0 when it was already stored. */
  readonly bytesUploaded: number;
}

/** A flow name as a key segment: lowercase letters, digits and dashes. */
export function slugify(name: string): string {
  const slug = name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return slug === "" ? `flow-${sha256Hex(name).slice(0, 8)}` : slug;
}
