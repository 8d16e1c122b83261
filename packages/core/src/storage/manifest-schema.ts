/**
 * The manifest's schema. A module of its own, imported by `manifest.ts` on first use: zod takes
 * about a tenth of a second to load, more than the rest of tern, and commands that read no
 * manifest (`tern flows`, `tern runs`) should not pay for it. A static import of `zod/mini` here
 * keeps what bundles inline of it tree-shaken (storage classes, and so this schema, are inlined
 * into flow bundles and the Lambda handlers).
 */
import * as z from "zod/mini";
// The English locale alone: the locales index loads every language (about 60 modules).
import en from "zod/v4/locales/en.js";
import type { JsonValue } from "../runner/serialized.js";

// zod/mini carries no messages of its own ("Invalid input" for everything) until a locale is loaded.
z.config(en());

const jsonValue: z.ZodMiniType<JsonValue> = z.lazy(() =>
  z.union([z.null(), z.boolean(), z.number(), z.string(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);

const nonEmpty = () => z.string().check(z.minLength(1));

const typedConfig = z.strictObject({ type: nonEmpty(), options: z.record(z.string(), jsonValue) });

const label = z
  .string()
  .check(z.refine((l) => l.trim() === l && l.trim() !== "", "labels must be non-empty and have no surrounding spaces"));

const scheduleBase = {
  name: nonEmpty(),
  catchUp: z.enum(["latest", "all", "none"]),
  parameters: z.optional(z.record(z.string(), jsonValue)),
  labels: z.optional(z.array(label)),
};

// What `checkSchedules` (schedule/definition.ts) keeps of a flow's `schedule` option.
const schedule = z.union([
  z.strictObject({ ...scheduleBase, cron: nonEmpty(), timezone: nonEmpty() }),
  z.strictObject({ ...scheduleBase, every: nonEmpty(), everyMs: z.int().check(z.positive()), anchor: nonEmpty() }),
]);

export const manifestSchema = z.strictObject({
  // MANIFEST_FORMAT (manifest.ts) has this literal as its type: the two cannot drift apart.
  format: z.literal("tern.manifest/1"),
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
    parameters: z.array(
      z.strictObject({
        name: nonEmpty(),
        required: z.boolean(),
        default: z.optional(jsonValue),
        // The JSON Schema its values must fit (`parameter(name, { schema })`).
        schema: z.optional(z.record(z.string(), jsonValue)),
      }),
    ),
    executor: typedConfig,
    referenceTasks: z.array(z.string()),
    // Absent for a flow with no schedule, so that its manifest (and its hash) stays as it was.
    schedules: z.optional(z.array(schedule)),
  }),
  storage: typedConfig,
  environment: z.strictObject({ type: nonEmpty(), options: z.record(z.string(), jsonValue), builtin: z.boolean() }),
  labels: z.array(label),
  dependencies: z.array(nonEmpty()),
});

/** What tern stores beside a flow's bundle: everything the agent needs, with no user code. */
export type Manifest = z.infer<typeof manifestSchema>;
