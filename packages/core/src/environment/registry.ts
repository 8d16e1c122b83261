import { TernError } from "../errors.js";
import type { JsonValue } from "../runner/serialized.js";
import type { Environment } from "./environment.js";
import { LocalEnvironment, localEnvironmentFromJSON } from "./local.js";

/** Rebuilds an environment from its JSON options. */
export type EnvironmentFactory = (options: Record<string, JsonValue>) => Environment;

const factories = new Map<string, EnvironmentFactory>([[LocalEnvironment.type, localEnvironmentFromJSON]]);

/**
 * Makes an environment type rebuildable from JSON in this process (agents do this for the
 * types they ship). Registering a taken name with another factory is an error.
 */
export function registerEnvironmentType(type: string, factory: EnvironmentFactory): void {
  const existing = factories.get(type);
  if (existing !== undefined && existing !== factory) {
    throw new TernError("ENVIRONMENT_TYPE", `Environment type "${type}" is already registered; choose another name.`);
  }
  factories.set(type, factory);
}

const loaders = new Map<string, () => Promise<unknown>>();

/**
 * Names the module that provides an environment type, imported the first time an agent meets
 * the type (importing it must call {@link registerEnvironmentType}). Keeps agents from loading
 * cloud SDKs they do not use.
 */
export function registerEnvironmentLoader(type: string, load: () => Promise<unknown>): void {
  loaders.set(type, load);
}

/** Imports the provider of `type` if a loader names one; resolves whether the type is known then. */
export async function loadEnvironmentType(type: string): Promise<boolean> {
  if (factories.has(type)) return true;
  const load = loaders.get(type);
  if (load === undefined) return false;
  try {
    await load();
  } catch (error) {
    throw new TernError(
      "ENVIRONMENT_TYPE",
      `Environment type "${type}": loading the package that provides it failed: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return factories.has(type);
}

/** Whether this process can rebuild `type` without user code. */
export function hasEnvironmentType(type: string): boolean {
  return factories.has(type);
}

/** Rebuilds an environment from `{ type, options }`. */
export function environmentFromJSON(config: { type: string; options: Record<string, JsonValue> }): Environment {
  const factory = factories.get(config.type);
  if (factory === undefined) {
    throw new TernError(
      "ENVIRONMENT_TYPE",
      `Unknown environment type "${config.type}". This process knows: ${[...factories.keys()].join(", ")}. ` +
        "Install and import the package that provides it, or register the flow with a known environment.",
    );
  }
  return factory(config.options);
}
