/**
 * What loading trusts: a stored object's sha256 checked against the one recorded at registration,
 * and the manifests this process already checked, kept so a warm process does not read them again.
 */
import { TernError } from "../errors.js";
import { sha256Hex } from "./blob-store.js";
import type { Manifest } from "./manifest.js";

/** A stored bundle's bytes differ from what was registered. */
export class BundleIntegrityError extends TernError {
  constructor(message: string) {
    super("BUNDLE_INTEGRITY", message);
  }
}

/**
 * Checks `bytes` against the sha256 recorded for them and returns it. `what` names the flow
 * (`"etl" version 3`), `kind` the object, `url` where it is stored.
 */
export function checkSha256(
  bytes: Uint8Array,
  expected: string,
  where: { readonly what: string; readonly kind: "manifest" | "bundle"; readonly url: string },
): string {
  const actual = sha256Hex(bytes);
  if (actual !== expected) {
    throw new BundleIntegrityError(
      `Flow ${where.what}: ${where.kind} sha256 mismatch (expected ${expected}, got ${actual}) at ${where.url}. ` +
        "The stored object was changed after registration; register the flow again.",
    );
  }
  return actual;
}

/** Manifests read with their expected sha256 and found to match, by location and hash (oldest dropped first). */
const verifiedManifests = new Map<string, Manifest>();
const VERIFIED_MANIFESTS_KEPT = 256;

/** A copy of the manifest verified under `cacheKey` in this process, if there is one. */
export function verifiedManifest(cacheKey: string): Manifest | undefined {
  const cached = verifiedManifests.get(cacheKey);
  return cached === undefined ? undefined : structuredClone(cached);
}

/** Keeps a copy of a manifest whose bytes matched their expected hash. */
export function rememberVerifiedManifest(cacheKey: string, manifest: Manifest): void {
  if (verifiedManifests.size >= VERIFIED_MANIFESTS_KEPT) {
    verifiedManifests.delete(verifiedManifests.keys().next().value as string);
  }
  verifiedManifests.set(cacheKey, structuredClone(manifest));
}

/** Drops the manifests this process keeps, as a new process would start (tests of a cold start). */
export function forgetVerifiedManifests(): void {
  verifiedManifests.clear();
}
