import { TernError } from "../errors.js";
import type { Manifest } from "./manifest-schema.js";

export type { Manifest } from "./manifest-schema.js";

/** The manifest format this version of tern writes and reads. */
export const MANIFEST_FORMAT: Manifest["format"] = "tern.manifest/1";

/** A manifest failed its schema. */
export class ManifestError extends TernError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("MANIFEST", message, options);
  }
}

/** Validates a manifest object; `where` names it in the error (a URL, or "the manifest being written"). */
export async function parseManifest(value: unknown, where: string): Promise<Manifest> {
  const result = (await import("./manifest-schema.js")).manifestSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 8)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
  throw new ManifestError(
    `Manifest ${where} is invalid: ${problems}. It was written by another version of tern or edited by hand; register the flow again.`,
  );
}

/** Reads manifest bytes: JSON, then the schema. */
export async function decodeManifest(bytes: Uint8Array, where: string): Promise<Manifest> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new ManifestError(
      `Manifest ${where} is not valid JSON (${(error as Error).message}). Register the flow again.`,
      {
        cause: error,
      },
    );
  }
  return parseManifest(value, where);
}

/** Manifest bytes: stable key order (as built), two-space JSON, trailing newline. */
export async function encodeManifest(manifest: Manifest): Promise<Uint8Array> {
  const checked = await parseManifest(manifest, "being written");
  return new TextEncoder().encode(`${JSON.stringify(checked, null, 2)}\n`);
}
