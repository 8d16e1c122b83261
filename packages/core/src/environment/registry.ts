import { type TypeFactory, TypeRegistry } from "../type-registry.js";
import type { Environment } from "./environment.js";
import { LocalEnvironment, localEnvironmentFromJSON } from "./local.js";

/** Rebuilds an environment from its JSON options. */
export type EnvironmentFactory = TypeFactory<Environment>;

const environments = new TypeRegistry<Environment>("Environment", [[LocalEnvironment.type, localEnvironmentFromJSON]], {
  install: "@tern/env-fargate",
  unknown: "Install and import the package that provides it, or register the flow with a known environment.",
});

/**
 * The environment types of this process. `registerEnvironmentType` makes a type rebuildable from
 * JSON (agents do this for the types they ship; a taken name with another factory is an error).
 * `registerEnvironmentLoader` names the module that provides a type, imported the first time an
 * agent meets it (`loadEnvironmentType`), so that agents load no cloud SDK they do not use.
 * `environmentFromJSON` rebuilds an environment from `{ type, options }`.
 */
export const {
  register: registerEnvironmentType,
  registerLoader: registerEnvironmentLoader,
  load: loadEnvironmentType,
  has: hasEnvironmentType,
  fromJSON: environmentFromJSON,
} = environments;
