import { describe } from "../describe.js";
import { FlowDefinitionError } from "../errors.js";
import { buildingGraph } from "./graph.js";
import {
  type JsonSchema,
  type ParameterSchema,
  recordableSchema,
  type SchemaType,
  schemaMismatch,
  shown,
} from "./parameter-schema.js";
import { makeRef, type ParameterDeclaration, type Ref } from "./ref.js";

/** Options of {@link parameter}. */
export interface ParameterOptions<T> {
  /** The value used when a run does not give one. */
  readonly default?: T;
  /**
   * Whether every run must give a value.
   * @default true when there is neither a default nor a schema that accepts no value (zod's `.optional()`), false otherwise
   */
  readonly required?: boolean;
  /**
   * What the values must be: a JSON Schema object (`{ type: "number" }`) or a zod schema
   * (`z.number()`, turned into its JSON Schema here). The manifest records the JSON Schema; every
   * way a run is created checks the values against it before anything is written, and
   * `tern run --param k=v` reads `v` by it. The reference's type follows from it.
   */
  readonly schema?: ParameterSchema;
}

const OPTIONS = ["default", "required", "schema"];

/**
 * Declares a run parameter and returns a typed reference to its value. Inside a flow's build
 * function the parameter belongs to that flow at once; outside one, to the first flow it is
 * used in. A run that passes an undeclared name, omits a required one, or gives a value its
 * schema does not accept, is rejected before any task runs.
 *
 * @example
 * const flow = new Flow("greet", {}, () => {
 *   const who = parameter("who", { default: "world" });
 *   const times = parameter("times", { schema: { type: "integer", minimum: 1 }, default: 1 });
 *   return { greeting: hello(who, times) };
 * });
 */
export function parameter<const S extends ParameterSchema>(
  name: string,
  options: { readonly schema: S; readonly default: NoInfer<SchemaType<S>>; readonly required?: boolean },
): Ref<Exclude<SchemaType<S>, undefined>>;
export function parameter<const S extends ParameterSchema>(
  name: string,
  options: { readonly schema: S; readonly required: false },
): Ref<SchemaType<S> | undefined>;
export function parameter<const S extends ParameterSchema>(
  name: string,
  options: { readonly schema: S; readonly required?: true },
): Ref<SchemaType<S>>;
export function parameter<T>(
  name: string,
  options: ParameterOptions<T> & { readonly default: T; readonly schema?: undefined },
): Ref<T>;
export function parameter<T>(
  name: string,
  options: { readonly required: false; readonly schema?: undefined },
): Ref<T | undefined>;
export function parameter<T>(name: string, options?: { readonly required?: true; readonly schema?: undefined }): Ref<T>;
export function parameter<T>(name: string, options: ParameterOptions<T> = {}): Ref<T | undefined> {
  if (typeof name !== "string" || name.trim() === "" || name !== name.trim()) {
    throw new FlowDefinitionError(
      `parameter(name): name must be a non-empty string without surrounding spaces, got ${describe(name)}.`,
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new FlowDefinitionError(`parameter("${name}"): options must be an object, got ${describe(options)}.`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTIONS.includes(key)) {
      throw new FlowDefinitionError(
        `parameter("${name}"): unknown option "${key}". Valid options: ${OPTIONS.join(", ")}.`,
      );
    }
  }
  const declared = options.schema === undefined ? undefined : recordableSchema(name, options.schema);
  // A schema's own default (zod's `.default(4)`) serves when the options give none.
  const fallback = options.default !== undefined ? options.default : declared?.json.default;
  const hasDefault = fallback !== undefined;
  const required = options.required ?? !(hasDefault || declared?.optional === true);
  if (typeof required !== "boolean") {
    throw new FlowDefinitionError(`parameter("${name}"): required must be a boolean, got ${describe(required)}.`);
  }
  if (declared !== undefined && hasDefault) checkDefault(name, declared.json, fallback);
  const declaration: ParameterDeclaration = Object.freeze({
    name,
    required,
    hasDefault,
    default: fallback,
    ...(declared === undefined ? {} : { schema: declared.json }),
  });
  const ref = makeRef<T | undefined>({ kind: "parameter", name, declaration });
  buildingGraph()?.declareParameter(declaration);
  return ref;
}

function checkDefault(name: string, schema: JsonSchema, value: unknown): void {
  const found = schemaMismatch(schema, value);
  if (found === undefined) return;
  const where = found.path === "" ? "" : ` (at ${found.path.replace(/^\./, "")}: ${shown(found.got)})`;
  throw new FlowDefinitionError(
    `parameter("${name}"): the default ${shown(value)} does not fit the schema${where}: expected ${found.expected}.`,
  );
}
