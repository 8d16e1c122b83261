import { z } from "zod";
import { TernError } from "../errors.js";
import type { JsonValue } from "../runner/serialize.js";

/** The manifest format this version of tern writes and reads. */
export const MANIFEST_FORMAT = "tern.manifest/1";

const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.null(), z.boolean(), z.number(), z.string(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);

const typedConfig = z.object({ type: z.string().min(1), options: z.record(z.string(), jsonValue) }).strict();

const label = z
  .string()
  .min(1)
  .refine((l) => l.trim() === l && l.trim() !== "", "labels must be non-empty and have no surrounding spaces");

const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    ternVersion: z.string().min(1),
    nodeVersion: z.string().regex(/^v\d+\.\d+\.\d+/),
    bundle: z
      .object({
        key: z.string().min(1),
        sha256: z.string().regex(/^[0-9a-f]{64}$/, "a sha256 in lowercase hex"),
        sizeBytes: z.number().int().nonnegative(),
      })
      .strict(),
    exportName: z.string().min(1),
    flow: z
      .object({
        name: z.string().min(1),
        description: z.string().optional(),
        tasks: z.array(
          z
            .object({
              slug: z.string().min(1),
              task: z.string().min(1),
              mapped: z.boolean(),
              maxRetries: z.number().int().nonnegative(),
              timeoutMs: z.number().positive().nullable(),
              trigger: z.string(),
            })
            .strict(),
        ),
        edges: z.array(z.object({ from: z.string(), to: z.string(), kind: z.enum(["data", "state"]) }).strict()),
        parameters: z.array(
          z.object({ name: z.string().min(1), required: z.boolean(), default: jsonValue.optional() }).strict(),
        ),
        executor: typedConfig,
        referenceTasks: z.array(z.string()),
      })
      .strict(),
    storage: typedConfig,
    environment: typedConfig.extend({ builtin: z.boolean() }).strict(),
    labels: z.array(label),
    dependencies: z.array(z.string().min(1)),
  })
  .strict();

/** What tern stores beside a flow's bundle: everything the agent needs, with no user code. */
export type Manifest = z.infer<typeof manifestSchema>;

/** A manifest failed its schema. */
export class ManifestError extends TernError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("MANIFEST", message, options);
  }
}

/** Validates a manifest object; `where` names it in the error (a URL, or "the manifest being written"). */
export function parseManifest(value: unknown, where: string): Manifest {
  const result = manifestSchema.safeParse(value);
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
export function decodeManifest(bytes: Uint8Array, where: string): Manifest {
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
export function encodeManifest(manifest: Manifest): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(parseManifest(manifest, "being written"), null, 2)}\n`);
}
