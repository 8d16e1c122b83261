/**
 * The one registry of types rebuilt from JSON (`{ type, options }`): storages and environments.
 * A type's factory rebuilds an instance; a loader names the module that registers a type, imported
 * the first time the type is met, so that a process loads a cloud SDK only when a flow uses it.
 */
import type { TypedConfig } from "./backend/types.js";
import { TernError } from "./errors.js";
import type { JsonValue } from "./runner/serialized.js";

/** Rebuilds an instance from its JSON options. */
export type TypeFactory<T> = (options: Record<string, JsonValue>) => T;

/** What a registry's messages advise. */
export interface TypeRegistryAdvice {
  /** The package to install where a type's module fails to load: `@tern/storage-cloud`. */
  readonly install: string;
  /** What to do about a type nothing in this process provides. */
  readonly unknown: string;
}

/** One kind's types. Its functions are bound, so that modules export them as they are. */
export class TypeRegistry<T> {
  readonly #code: "STORAGE_TYPE" | "ENVIRONMENT_TYPE";
  readonly #factories: Map<string, TypeFactory<T>>;
  readonly #loaders = new Map<string, () => Promise<unknown>>();

  /**
   * @param noun - how messages name the types, and their error code: `Storage` (`STORAGE_TYPE`)
   * @param builtIns - the types every process knows
   */
  constructor(
    private readonly noun: "Storage" | "Environment",
    builtIns: Iterable<readonly [string, TypeFactory<T>]>,
    private readonly advice: TypeRegistryAdvice,
  ) {
    this.#code = noun === "Storage" ? "STORAGE_TYPE" : "ENVIRONMENT_TYPE";
    this.#factories = new Map(builtIns);
  }

  /** Makes `type` rebuildable in this process. Registering a taken name with another factory is an error. */
  readonly register = (type: string, factory: TypeFactory<T>): void => {
    const existing = this.#factories.get(type);
    if (existing !== undefined && existing !== factory) {
      throw new TernError(this.#code, `${this.noun} type "${type}" is already registered; choose another name.`);
    }
    this.#factories.set(type, factory);
  };

  /** Names the module that provides `type`; importing it must {@link register} the type. */
  readonly registerLoader = (type: string, load: () => Promise<unknown>): void => {
    this.#loaders.set(type, load);
  };

  /** Whether this process can rebuild `type` without importing anything. */
  readonly has = (type: string): boolean => {
    return this.#factories.has(type);
  };

  /** Imports the provider of `type` if it is not registered and a loader names one; resolves whether it is known then. */
  readonly load = async (type: string): Promise<boolean> => {
    const load = this.#loaders.get(type);
    if (!this.#factories.has(type) && load !== undefined) {
      try {
        await load();
      } catch (error) {
        throw new TernError(
          this.#code,
          `${this.noun} type "${type}" needs a package that could not be loaded (${(error as Error).message}). Install it where this runs (for example pnpm add ${this.advice.install}).`,
          { cause: error },
        );
      }
    }
    return this.#factories.has(type);
  };

  /** Rebuilds an instance from its JSON form (its type must be registered: see {@link load}). */
  readonly fromJSON = (config: TypedConfig): T => {
    const factory = this.#factories.get(config.type);
    if (factory === undefined) {
      const known = new Set([...this.#factories.keys(), ...this.#loaders.keys()]);
      throw new TernError(
        this.#code,
        `Unknown ${this.noun.toLowerCase()} type "${config.type}". This process knows: ${[...known].join(", ")}. ${this.advice.unknown}`,
      );
    }
    return factory({ ...config.options });
  };
}
