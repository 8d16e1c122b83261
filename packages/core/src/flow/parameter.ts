import { describe } from "../describe.js";
import { FlowDefinitionError } from "../errors.js";
import { buildingGraph } from "./graph.js";
import { makeRef, type ParameterDeclaration, type Ref } from "./ref.js";

/** Options of {@link parameter}. */
export interface ParameterOptions<T> {
  /** The value used when a run does not give one. */
  readonly default?: T;
  /**
   * Whether every run must give a value.
   * @default true when there is no default, false otherwise
   */
  readonly required?: boolean;
}

/**
 * Declares a run parameter and returns a typed reference to its value. Inside a flow's build
 * function the parameter belongs to that flow at once; outside one, to the first flow it is
 * used in. A run that passes an undeclared name, or omits a required one, is rejected before
 * any task runs.
 *
 * @example
 * const flow = new Flow("greet", {}, () => {
 *   const who = parameter("who", { default: "world" });
 *   return { greeting: hello(who) };
 * });
 */
export function parameter<T>(name: string, options: ParameterOptions<T> & { readonly default: T }): Ref<T>;
export function parameter<T>(name: string, options: { readonly required: false }): Ref<T | undefined>;
export function parameter<T>(name: string, options?: { readonly required?: true }): Ref<T>;
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
    if (key !== "default" && key !== "required") {
      throw new FlowDefinitionError(`parameter("${name}"): unknown option "${key}". Valid options: default, required.`);
    }
  }
  const hasDefault = "default" in options && options.default !== undefined;
  const required = options.required ?? !hasDefault;
  if (typeof required !== "boolean") {
    throw new FlowDefinitionError(`parameter("${name}"): required must be a boolean, got ${describe(required)}.`);
  }
  const declaration: ParameterDeclaration = Object.freeze({ name, required, hasDefault, default: options.default });
  const ref = makeRef<T | undefined>({ kind: "parameter", name, declaration });
  buildingGraph()?.declareParameter(declaration);
  return ref;
}
