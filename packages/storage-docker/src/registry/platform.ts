/** Choosing one image of an index by platform (pure: no I/O). */
import { TernError } from "@tern/core";
import { RegistryError, type RegistryErrorContext, where } from "../errors.js";
import type { Descriptor, ImageIndex, Platform } from "./media-types.js";

/** The platform asked for: `os`/`architecture`, and `variant` when it matters (`arm` v7, `arm64` v8). */
export interface PlatformWanted {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

/** `linux/arm64/v8` → `{ os: "linux", architecture: "arm64", variant: "v8" }`. */
export function parsePlatform(text: string): PlatformWanted {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9._-]+$/.test(part))) {
    throw new TernError(
      "STORAGE_OPTIONS",
      `Platform ${JSON.stringify(text)} is not os/architecture[/variant] (for example linux/amd64 or linux/arm64).`,
    );
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export function formatPlatform(platform: PlatformWanted | Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter((part) => part !== undefined).join("/");
}

/** arm64's only variant is v8: an index may name it or leave it out. */
function variantOf(platform: PlatformWanted | Platform): string | undefined {
  return platform.architecture === "arm64" && platform.variant === undefined ? "v8" : platform.variant;
}

function matches(candidate: Platform, wanted: PlatformWanted): boolean {
  if (candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return false;
  return wanted.variant === undefined && wanted.architecture !== "arm64"
    ? true
    : variantOf(candidate) === variantOf(wanted);
}

/**
 * The manifest of `index` (the image `reference` of the repository in `context`) for `wanted`;
 * fails naming the platforms the index has. Entries without a platform or for `unknown/unknown`
 * (attestations) are never chosen.
 */
export function selectPlatform(
  index: ImageIndex,
  wanted: PlatformWanted,
  context: RegistryErrorContext,
  reference: string,
): Descriptor {
  const candidates = index.manifests.filter(
    (entry): entry is Descriptor & { platform: Platform } =>
      entry.platform !== undefined && entry.platform.os !== "unknown" && entry.platform.architecture !== "unknown",
  );
  const found = candidates.find((entry) => matches(entry.platform, wanted));
  if (found !== undefined) return found;
  const available = [...new Set(candidates.map((entry) => formatPlatform(entry.platform)))];
  throw new RegistryError(
    "STORAGE_OPTIONS",
    `${where(context)}: image ${reference} has no image for platform ${formatPlatform(wanted)}; it has ${available.length === 0 ? "none with a platform" : available.join(", ")}. Choose one of those platforms, or a base image built for ${formatPlatform(wanted)}.`,
    context,
  );
}
