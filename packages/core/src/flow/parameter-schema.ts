/**
 * Parameter schemas: what `parameter(name, { schema })` accepts, the JSON Schema a manifest
 * records, and the check of a value against it.
 *
 * The check is written here, for the part of JSON Schema that parameters use, instead of taken
 * from a library: it runs in every flow bundle (`flow.run()` checks its values, `parameter()` its
 * default), where zod's `fromJSONSchema` would inline zod's classic API (some 400 KB of a 45 KB
 * bundle) and ajv about 125 KB, and where the CLI's `tern run` would pay 30 to 150 ms to load
 * either. Keywords outside that part are refused when the parameter is declared, so a recorded
 * schema never says more than what is checked.
 */
import { describe } from "../describe.js";
import { FlowDefinitionError, TernError } from "../errors.js";
import { toSerializedValue } from "../runner/serialize.js";
import type { JsonSchema } from "./ref.js";

export type { JsonSchema } from "./ref.js";

/**
 * A schema of the Standard JSON Schema interface (`~standard.jsonSchema`), such as a zod 4
 * schema: tern asks it for its JSON Schema once, when the parameter is declared.
 */
export interface StandardJsonSchema<Input = unknown> {
  readonly "~standard": {
    readonly validate: (value: unknown) => unknown;
    readonly jsonSchema?: { readonly input: (options: { readonly target: string }) => Record<string, unknown> };
    readonly types?: { readonly input: Input } | undefined;
  };
}

/** What `parameter(name, { schema })` takes: a JSON Schema object or a Standard JSON Schema (zod). */
export type ParameterSchema = JsonSchema | StandardJsonSchema;

/** The TypeScript type of the values a parameter schema accepts. */
export type SchemaType<S> = S extends { readonly "~standard": { readonly types?: infer T } }
  ? NonNullable<T> extends { readonly input: infer I }
    ? I
    : unknown
  : FromJsonSchema<S>;

/** The TypeScript type of the values a JSON Schema (of the keywords tern checks) accepts. */
export type FromJsonSchema<S> = S extends { readonly const: infer C }
  ? C
  : S extends { readonly enum: readonly (infer E)[] }
    ? E
    : S extends { readonly anyOf: readonly (infer A)[] }
      ? FromJsonSchema<A>
      : S extends { readonly oneOf: readonly (infer A)[] }
        ? FromJsonSchema<A>
        : S extends { readonly type: infer T }
          ? T extends readonly (infer U)[]
            ? TypeNamed<S, U>
            : TypeNamed<S, T>
          : unknown;

type TypeNamed<S, T> = T extends "string"
  ? string
  : T extends "number" | "integer"
    ? number
    : T extends "boolean"
      ? boolean
      : T extends "null"
        ? null
        : T extends "array"
          ? S extends { readonly items: infer I }
            ? FromJsonSchema<I>[]
            : unknown[]
          : T extends "object"
            ? ObjectOf<S>
            : unknown;

type RequiredKeys<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;

type ObjectOf<S> = S extends { readonly properties: infer P }
  ? Flat<
      { -readonly [K in keyof P as K extends RequiredKeys<S> ? K : never]: FromJsonSchema<P[K]> } & {
        -readonly [K in keyof P as K extends RequiredKeys<S> ? never : K]?: FromJsonSchema<P[K]>;
      }
    >
  : S extends { readonly additionalProperties: infer A extends object }
    ? Record<string, FromJsonSchema<A>>
    : Record<string, unknown>;

type Flat<T> = { [K in keyof T]: T[K] };

/** The values of `type` tern checks. */
const TYPES = new Set(["string", "number", "integer", "boolean", "null", "array", "object"]);

/** Keywords that describe and are not checked. */
const ANNOTATIONS = ["$schema", "$id", "title", "description", "default", "examples", "deprecated", "format"];

/** Keywords checked, each with how its value is checked when the schema is declared. */
const CHECKED: Record<string, "schema" | "schemas" | "properties" | "number" | "count" | "strings" | "any"> = {
  type: "any",
  enum: "any",
  const: "any",
  items: "schema",
  properties: "properties",
  required: "strings",
  additionalProperties: "schema",
  propertyNames: "schema",
  anyOf: "schemas",
  oneOf: "schemas",
  minimum: "number",
  maximum: "number",
  exclusiveMinimum: "number",
  exclusiveMaximum: "number",
  multipleOf: "number",
  minLength: "count",
  maxLength: "count",
  minItems: "count",
  maxItems: "count",
  pattern: "any",
};

/** Whether `value` offers the Standard Schema interface (zod, and other schema libraries). */
function isStandard(value: unknown): value is StandardJsonSchema {
  return (typeof value === "object" || typeof value === "function") && value !== null && "~standard" in value;
}

/**
 * The JSON Schema to record for a declared parameter schema, and whether it accepts a missing
 * value (a zod `.optional()` or `.default()`). Throws a {@link FlowDefinitionError} naming the
 * parameter for a schema that cannot be recorded: no JSON Schema form (zod's `z.date()`, a
 * `zod/mini` schema), not JSON, or a keyword tern does not check.
 */
export function recordableSchema(name: string, schema: unknown): { json: JsonSchema; optional: boolean } {
  const where = `parameter("${name}"): schema`;
  if (!isStandard(schema)) return { json: checkedJsonSchema(where, schema), optional: false };
  const standard = schema["~standard"];
  if (standard.jsonSchema === undefined) {
    throw new FlowDefinitionError(
      `${where} gives no JSON Schema (a zod/mini schema does not): pass a zod schema from "zod", or its JSON Schema (z.toJSONSchema(schema)).`,
    );
  }
  let json: unknown;
  try {
    json = standard.jsonSchema.input({ target: "draft-2020-12" });
  } catch (error) {
    throw new FlowDefinitionError(`${where} cannot be written as JSON Schema: ${(error as Error).message}.`);
  }
  const accepted = standard.validate(undefined) as { issues?: unknown } | Promise<unknown>;
  const optional = !(accepted instanceof Promise) && accepted.issues === undefined;
  return { json: checkedJsonSchema(where, json), optional };
}

/** `schema` as JSON, after checking it uses only the keywords tern checks. */
function checkedJsonSchema(where: string, schema: unknown): JsonSchema {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new FlowDefinitionError(`${where} must be a JSON Schema object or a zod schema, got ${describe(schema)}.`);
  }
  const json = toSerializedValue(schema);
  if (json.kind !== "json") {
    throw new FlowDefinitionError(
      `${where} cannot be recorded as JSON: ${json.kind === "unserializable" ? json.reason : "undefined"}.`,
    );
  }
  checkKeywords(where, json.value, "");
  return json.value as JsonSchema;
}

function checkKeywords(where: string, schema: unknown, path: string): void {
  const at = path === "" ? "" : ` at ${path}`;
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new FlowDefinitionError(`${where}${at} must be an object, got ${describe(schema)}.`);
  }
  for (const [keyword, value] of Object.entries(schema)) {
    const kind = CHECKED[keyword];
    if (kind === undefined) {
      if (ANNOTATIONS.includes(keyword)) continue;
      throw new FlowDefinitionError(
        `${where}${at} uses "${keyword}", which tern does not check. Use type, enum, const, items, properties, required, additionalProperties, anyOf, oneOf and the bounds (minimum, maxLength, ...).`,
      );
    }
    const bad = (expected: string) =>
      new FlowDefinitionError(`${where}${at}: "${keyword}" must be ${expected}, got ${describe(value)}.`);
    if (keyword === "type") {
      const names = Array.isArray(value) ? value : [value];
      if (names.length === 0 || !names.every((n) => typeof n === "string" && TYPES.has(n))) {
        throw bad(`one of ${[...TYPES].join(", ")} (or a list of them)`);
      }
    } else if (keyword === "enum" && !Array.isArray(value)) throw bad("a list");
    else if (keyword === "pattern" && typeof value !== "string") throw bad("a regular expression");
    else if (kind === "schema" && typeof value !== "boolean") checkKeywords(where, value, `${path}.${keyword}`);
    else if (kind === "schemas") {
      if (!Array.isArray(value)) throw bad("a list of schemas");
      for (const [i, s] of value.entries()) checkKeywords(where, s, `${path}.${keyword}[${i}]`);
    } else if (kind === "properties") {
      if (typeof value !== "object" || value === null) throw bad("an object of schemas");
      for (const [key, s] of Object.entries(value)) checkKeywords(where, s, `${path}.properties.${key}`);
    } else if (kind === "number" && typeof value !== "number") throw bad("a number");
    else if (kind === "count" && !(Number.isInteger(value) && (value as number) >= 0)) throw bad("a whole number");
    else if (kind === "strings" && !(Array.isArray(value) && value.every((v) => typeof v === "string"))) {
      throw bad("a list of names");
    }
  }
}

/** What a schema expects, for messages: `number`, `string or null`, `one of "a", "b"`. */
export function expectedBy(schema: JsonSchema): string {
  if ("const" in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.map((v) => JSON.stringify(v)).join(", ")}`;
  const union = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (union !== undefined) return union.map(expectedBy).join(" or ");
  if (schema.type === undefined) return "a value of its schema";
  return (Array.isArray(schema.type) ? schema.type : [schema.type]).join(" or ");
}

/** Whether `value` has the JSON Schema type `type`. */
function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "array":
      return Array.isArray(value);
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    default:
      return typeof value === type;
  }
}

/** JSON equality (key order aside), for `enum` and `const`. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => k in b && same((a as never)[k], (b as never)[k]));
}

/** A mismatch: where in the value (`""` for the value itself) and what was expected there. */
export interface Mismatch {
  readonly path: string;
  readonly expected: string;
  readonly got: unknown;
}

/**
 * The first place where `value` does not fit `schema` (a schema checked by
 * {@link recordableSchema}), or undefined when it fits.
 */
export function schemaMismatch(schema: JsonSchema | boolean, value: unknown, path = ""): Mismatch | undefined {
  if (schema === true) return undefined;
  if (schema === false) return { path, expected: "nothing (no value is allowed here)", got: value };
  const here = (expected: string): Mismatch => ({ path, expected, got: value });
  if (schema.type !== undefined) {
    const types = (Array.isArray(schema.type) ? schema.type : [schema.type]) as string[];
    if (!types.some((t) => hasType(value, t))) return here(expectedBy({ type: schema.type }));
  }
  if ("const" in schema && !same(value, schema.const)) return here(expectedBy(schema));
  if (Array.isArray(schema.enum) && !schema.enum.some((v) => same(value, v))) return here(expectedBy(schema));
  for (const key of ["anyOf", "oneOf"] as const) {
    const options = schema[key] as JsonSchema[] | undefined;
    if (options === undefined) continue;
    const fitting = options.filter((s) => schemaMismatch(s, value, path) === undefined).length;
    if (fitting === 0 || (key === "oneOf" && fitting > 1)) return here(expectedBy(schema));
  }
  return (
    boundsMismatch(schema, value, here) ??
    (Array.isArray(value) ? itemsMismatch(schema, value, path) : undefined) ??
    (hasType(value, "object") ? propertiesMismatch(schema, value as Record<string, unknown>, path) : undefined)
  );
}

function boundsMismatch(
  schema: JsonSchema,
  value: unknown,
  here: (expected: string) => Mismatch,
): Mismatch | undefined {
  const n = (key: string) => schema[key] as number | undefined;
  if (typeof value === "number") {
    if (n("minimum") !== undefined && value < (n("minimum") as number)) return here(`a number >= ${n("minimum")}`);
    if (n("maximum") !== undefined && value > (n("maximum") as number)) return here(`a number <= ${n("maximum")}`);
    const above = n("exclusiveMinimum");
    if (above !== undefined && value <= above) return here(`a number > ${above}`);
    const below = n("exclusiveMaximum");
    if (below !== undefined && value >= below) return here(`a number < ${below}`);
    const step = n("multipleOf");
    if (step !== undefined && !Number.isInteger(value / step)) return here(`a multiple of ${step}`);
  }
  const length = typeof value === "string" ? [...value].length : Array.isArray(value) ? value.length : undefined;
  if (length !== undefined) {
    const unit = typeof value === "string" ? "characters" : "items";
    const [min, max] = typeof value === "string" ? ["minLength", "maxLength"] : ["minItems", "maxItems"];
    if (n(min as string) !== undefined && length < (n(min as string) as number)) {
      return here(`at least ${n(min as string)} ${unit}`);
    }
    if (n(max as string) !== undefined && length > (n(max as string) as number)) {
      return here(`at most ${n(max as string)} ${unit}`);
    }
  }
  if (typeof value === "string" && typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) {
    return here(`text matching /${schema.pattern}/`);
  }
  return undefined;
}

function itemsMismatch(schema: JsonSchema, value: readonly unknown[], path: string): Mismatch | undefined {
  const items = schema.items as JsonSchema | boolean | undefined;
  if (items === undefined) return undefined;
  for (const [i, item] of value.entries()) {
    const found = schemaMismatch(items, item, `${path}[${i}]`);
    if (found !== undefined) return found;
  }
  return undefined;
}

function propertiesMismatch(schema: JsonSchema, value: Record<string, unknown>, path: string): Mismatch | undefined {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  for (const key of (schema.required ?? []) as string[]) {
    if (value[key] === undefined)
      return { path: `${path}.${key}`, expected: expectedBy(properties[key] ?? {}), got: undefined };
  }
  for (const [key, item] of Object.entries(value)) {
    const names = schema.propertyNames as JsonSchema | undefined;
    const badName = names === undefined ? undefined : schemaMismatch(names, key, `${path} (a key)`);
    if (badName !== undefined) return badName;
    const itemSchema = properties[key] ?? (schema.additionalProperties as JsonSchema | boolean | undefined);
    const found = itemSchema === undefined ? undefined : schemaMismatch(itemSchema, item, `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A value for messages: its JSON, shortened, or a description of what is not JSON. */
export function shown(value: unknown): string {
  const json = toSerializedValue(value);
  if (json.kind !== "json") return describe(value);
  const text = JSON.stringify(json.value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A run's parameter values do not fit their declared schemas. Code `PARAMETERS`, as {@link ParameterError}'s. */
export class ParameterValueError extends TernError {
  /** Each parameter whose value does not fit, with the value and what its schema expects. */
  readonly problems: readonly (Mismatch & { readonly name: string })[];

  constructor(flowName: string, problems: readonly (Mismatch & { readonly name: string })[]) {
    const parts = problems.map((p) => {
      const where = p.path === "" ? "" : ` at ${p.path.replace(/^\./, "")}`;
      const got = p.got === undefined ? "nothing" : shown(p.got);
      return `parameter "${p.name}"${where} is ${got}, expected ${p.expected}`;
    });
    super("PARAMETERS", `Flow "${flowName}": ${parts.join("; ")}. Give values of the declared types. Nothing was run.`);
    this.problems = problems;
  }
}

/** A parameter as checked: its name and, if declared, its schema. */
export interface CheckedParameter {
  readonly name: string;
  readonly schema?: JsonSchema | undefined;
}

/**
 * Checks the given values of declared parameters against their schemas; throws a
 * {@link ParameterValueError} naming every value that does not fit. Undeclared names and
 * missing values are left to the caller's own check.
 */
export function checkParameterValues(
  flowName: string,
  declared: readonly CheckedParameter[],
  values: Readonly<Record<string, unknown>>,
): void {
  const problems: (Mismatch & { name: string })[] = [];
  for (const { name, schema } of declared) {
    if (schema === undefined || values[name] === undefined) continue;
    const found = schemaMismatch(schema, values[name]);
    if (found !== undefined) problems.push({ name, ...found });
  }
  if (problems.length > 0) throw new ParameterValueError(flowName, problems);
}

/**
 * A parameter's value from text (a command line's `k=v`): the text itself when the declared
 * schema takes text, else what it reads as JSON (`5`, `true`, `[1,2]`), else the text (which the
 * check then refuses, naming it). Without a schema: JSON when the text parses as JSON, else the
 * text; numbers JSON cannot hold exactly (12345678901234567890, 1e400) stay text either way.
 */
export function readParameterText(schema: JsonSchema | undefined, text: string): unknown {
  if (schema !== undefined && schemaMismatch(schema, text) === undefined) return text;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return text;
  }
  const inexact =
    typeof value === "number" && (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value)));
  return inexact ? text : value;
}
