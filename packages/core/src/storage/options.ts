/**
 * Storage options checked by each storage type's zod schema, with one wording for every driver.
 * This module imports zod's types only: zod takes a noticeable time to load, and `@tern/core` and
 * `@tern/core/plugin` are imported by processes that never check options (the schemas themselves
 * live in modules loaded when needed: `local-options.ts`, the cloud drivers).
 */
import type * as z from "zod/mini";
import { TernError } from "../errors.js";

/** A storage type's options schema: a strict object of its options. */
export type StorageOptionsSchema = z.ZodMiniObject;

const schemas = new Map<string, StorageOptionsSchema>();

/**
 * Declares the options schema of a storage type, so that options given as text
 * (`tern register --storage-option key=value`) are parsed as the type expects them.
 */
export function registerStorageOptionsSchema(type: string, schema: StorageOptionsSchema): void {
  schemas.set(type, schema);
}

/** The options schema a storage type declared, if its module is loaded and declared one. */
export function storageOptionsSchema(type: string): StorageOptionsSchema | undefined {
  return schemas.get(type);
}

/**
 * Parses `options` with `schema`, or throws a `STORAGE_OPTIONS` error naming every problem and the
 * fix: `S3Storage: unknown option "buckt". Valid options: prefix, external, bucket, ….`
 */
export function checkStorageOptions(driver: string, schema: StorageOptionsSchema, options: unknown): void {
  const result = schema.safeParse(options);
  if (result.success) return;
  const keys = Object.keys(schema.shape);
  const required = keys.filter((key) => schema.shape[key]?._zod.def.type !== "optional");
  const given = (typeof options === "object" && options !== null ? options : {}) as Record<string, unknown>;
  // Unknown keys first: a misspelt option is the likeliest mistake, and explains a missing one.
  const issues = [...result.error.issues].sort(
    (a, b) => Number(b.code === "unrecognized_keys") - Number(a.code === "unrecognized_keys"),
  );
  const problems = issues.map((issue) => {
    const key = issue.path.map(String).join(".");
    switch (issue.code) {
      case "unrecognized_keys":
        return `unknown option${issue.keys.length === 1 ? "" : "s"} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}. Valid options: ${keys.join(", ")}.`;
      case "invalid_type":
        if (key === "") return `options must be an object with ${required.join(", ")}.`;
        if (given[key] === undefined) {
          return `option "${key}" is required${issue.expected === "string" ? " (a non-empty string)" : ""}.`;
        }
        return `option "${key}" must be ${article(issue.expected)}, not ${typeName(given[key])}.`;
      case "invalid_value":
        return `${key} ${JSON.stringify(given[key])} is not one of ${issue.values.map(String).join(", ")}.`;
      default:
        return issue.message;
    }
  });
  throw new TernError("STORAGE_OPTIONS", `${driver}: ${problems.join(" ")}`);
}

/**
 * Options given as `key=value` text, each value parsed as the type's schema expects it: a string
 * option takes the text as is; a boolean, number, array or object option takes JSON (an array
 * also a comma-separated list). A key the schema does not know, or a value that does not parse,
 * is kept as text, so that the storage's check names it.
 */
export function storageOptionsFromText(
  schema: StorageOptionsSchema | undefined,
  pairs: readonly string[],
): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) {
      throw new TernError(
        "STORAGE_OPTIONS",
        `storage option ${JSON.stringify(pair)} is not key=value. Write it as --storage-option directory=/var/lib/tern.`,
      );
    }
    const key = pair.slice(0, at);
    const text = pair.slice(at + 1);
    if (key in options) {
      throw new TernError(
        "STORAGE_OPTIONS",
        `storage option "${key}" is given twice. Give each option once (a list as one value: ${key}=a,b).`,
      );
    }
    options[key] = parseText(optionType(schema?.shape[key]), text);
  }
  return options;
}

/** The type of value an option takes, under `optional` and `readonly`. */
function optionType(schema: z.core.$ZodType | undefined): string | undefined {
  let def = schema?._zod.def;
  while (def !== undefined && (def.type === "optional" || def.type === "readonly")) {
    def = (def as z.core.$ZodOptionalDef).innerType._zod.def;
  }
  return def?.type;
}

function parseText(type: string | undefined, text: string): unknown {
  if (type === undefined || type === "string" || type === "enum" || type === "literal") return text;
  try {
    return JSON.parse(text);
  } catch {
    return type === "array" ? text.split(",").map((item) => item.trim()) : text;
  }
}

function article(type: string): string {
  return `${/^[aeiou]/.test(type) ? "an" : "a"} ${type}`;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return article(typeof value);
}
