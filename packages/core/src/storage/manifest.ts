import type * as Zod from "zod/mini";
import { TernError } from "../errors.js";
import type { JsonValue } from "../runner/serialize.js";

/** The manifest format this version of tern writes and reads. */
export const MANIFEST_FORMAT = "tern.manifest/1";

// zod/mini keeps flow bundles small: storage classes (and so this schema) are inlined into them.
// zod is imported on first use: it takes a tenth of a second to load, more than the rest of
// tern, and commands that read no manifest (`tern flows`, `tern runs`) should not pay for it.
function buildSchema(z: typeof Zod) {
  const jsonValue: Zod.ZodMiniType<JsonValue> = z.lazy(() =>
    z.union([z.null(), z.boolean(), z.number(), z.string(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
  );

  const nonEmpty = () => z.string().check(z.minLength(1));

  const typedConfig = z.strictObject({ type: nonEmpty(), options: z.record(z.string(), jsonValue) });

  const label = z
    .string()
    .check(
      z.refine((l) => l.trim() === l && l.trim() !== "", "labels must be non-empty and have no surrounding spaces"),
    );

  return z.strictObject({
    format: z.literal(MANIFEST_FORMAT),
    ternVersion: nonEmpty(),
    nodeVersion: z.string().check(z.regex(/^v\d+\.\d+\.\d+/)),
    bundle: z.strictObject({
      key: nonEmpty(),
      sha256: z.string().check(z.regex(/^[0-9a-f]{64}$/, "a sha256 in lowercase hex")),
      sizeBytes: z.int().check(z.nonnegative()),
    }),
    exportName: nonEmpty(),
    flow: z.strictObject({
      name: nonEmpty(),
      description: z.optional(z.string()),
      tasks: z.array(
        z.strictObject({
          slug: nonEmpty(),
          task: nonEmpty(),
          mapped: z.boolean(),
          maxRetries: z.int().check(z.nonnegative()),
          timeoutMs: z.nullable(z.number().check(z.positive())),
          trigger: z.string(),
        }),
      ),
      edges: z.array(z.strictObject({ from: z.string(), to: z.string(), kind: z.enum(["data", "state"]) })),
      parameters: z.array(z.strictObject({ name: nonEmpty(), required: z.boolean(), default: z.optional(jsonValue) })),
      executor: typedConfig,
      referenceTasks: z.array(z.string()),
    }),
    storage: typedConfig,
    environment: z.strictObject({ type: nonEmpty(), options: z.record(z.string(), jsonValue), builtin: z.boolean() }),
    labels: z.array(label),
    dependencies: z.array(nonEmpty()),
  });
}

let schema: Promise<ReturnType<typeof buildSchema>> | undefined;

function manifestSchema(): Promise<ReturnType<typeof buildSchema>> {
  schema ??= import("zod/mini").then(buildSchema);
  return schema;
}

/** What tern stores beside a flow's bundle: everything the agent needs, with no user code. */
export type Manifest = Zod.infer<ReturnType<typeof buildSchema>>;

/** A manifest failed its schema. */
export class ManifestError extends TernError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("MANIFEST", message, options);
  }
}

/** Validates a manifest object; `where` names it in the error (a URL, or "the manifest being written"). */
export async function parseManifest(value: unknown, where: string): Promise<Manifest> {
  const result = (await manifestSchema()).safeParse(value);
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
