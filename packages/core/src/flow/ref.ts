const REF = Symbol.for("tern.ref");
const UNMAPPED = Symbol.for("tern.unmapped");
declare const VALUE: unique symbol;

/**
 * A typed reference to a value that exists only when the flow runs: a task's result or a
 * parameter. Pass it to another task to make that task depend on it.
 */
export interface Ref<T> {
  /** Phantom field: carries the referenced type, never set at run time. */
  readonly [VALUE]?: T;
}

/** A task's argument: a plain value or a reference to a value of the same type. */
export type Input<T> = T | Ref<T>;

/** Maps a task's parameter list to what a call may pass for it. */
export type Inputs<A extends readonly unknown[]> = { [K in keyof A]: Input<A[K]> };

/** The flow graph a task reference was made in, as references see it (a `FlowGraph`). */
export interface RefGraph {
  readonly flowName: string;
  readonly nodes: readonly { readonly slug: string }[];
}

/** What a reference stands for at run time. */
export type RefTarget =
  | { readonly kind: "task"; readonly graph: RefGraph; readonly node: number }
  | { readonly kind: "parameter"; readonly name: string; readonly declaration: ParameterDeclaration };

/** A JSON Schema as a manifest records it (JSON only). */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** A parameter as declared with {@link parameter}. */
export interface ParameterDeclaration {
  readonly name: string;
  readonly required: boolean;
  readonly hasDefault: boolean;
  readonly default: unknown;
  /** The JSON Schema its values must fit, when one was declared. */
  readonly schema?: JsonSchema;
}

interface RefObject {
  readonly [REF]: RefTarget;
}

/** Creates a reference object for `target`. */
export function makeRef<T>(target: RefTarget): Ref<T> {
  const ref: RefObject = { [REF]: target };
  return ref as unknown as Ref<T>;
}

/** Whether `value` is a tern reference. */
export function isRef(value: unknown): value is Ref<unknown> {
  return typeof value === "object" && value !== null && REF in value;
}

/** The target of a reference. */
export function refTarget(ref: Ref<unknown>): RefTarget {
  return (ref as unknown as RefObject)[REF];
}

/** An argument of `task.map(...)` that every mapped child receives whole. */
export interface Unmapped<T> {
  readonly [UNMAPPED]: Input<T>;
}

/**
 * Marks an argument of `task.map(...)` as shared: every child gets the whole value instead of
 * one element of it.
 *
 * @example
 * const scaled = scale.map(numbers, unmapped(factor));
 */
export function unmapped<T>(value: Input<T>): Unmapped<T> {
  return { [UNMAPPED]: value };
}

/** Whether `value` was wrapped with {@link unmapped}. */
export function isUnmapped(value: unknown): value is Unmapped<unknown> {
  return typeof value === "object" && value !== null && UNMAPPED in value;
}

/** The value wrapped by {@link unmapped}. */
export function unwrapUnmapped(value: Unmapped<unknown>): unknown {
  return value[UNMAPPED];
}
