/**
 * What a flow may be given as its storage and its environment, checked where it is given (the
 * `Flow` options, or `flow.storage = ...` and `flow.environment = ...` later). Recognised by
 * shape, never `instanceof`: a flow file's bundle inlines its own copy of tern's classes.
 */
import { describe } from "../describe.js";
import { FlowDefinitionError } from "../errors.js";

/** What a value must have, by kind, and how to make one. */
const KINDS = {
  storage: {
    what: "a Storage",
    methods: ["add", "build", "built", "writeManifest", "readManifest", "load", "toJSON"],
    example: "new LocalStorage(), or S3Storage from @tern/storage-cloud",
  },
  environment: {
    what: "an Environment",
    methods: ["setup", "execute", "toJSON"],
    example:
      "new LocalEnvironment({ labels }), FargateTaskEnvironment from @tern/env-fargate, or a subclass of Environment",
  },
} as const;

/**
 * `value` if it is a storage (or environment) or undefined (the default); else a
 * {@link FlowDefinitionError} naming the value and what to give instead.
 */
export function checkPlacement<T extends object>(
  kind: keyof typeof KINDS,
  value: unknown,
  flowName: string,
): T | undefined {
  if (value === undefined) return undefined;
  const { what, methods, example } = KINDS[kind];
  if (typeof value === "object" && value !== null) {
    const missing = methods.filter((m) => typeof (value as Record<string, unknown>)[m] !== "function");
    if (missing.length === 0) return value as T;
    // Its JSON form ({ type, options }), as a manifest records it: the object is what is wanted.
    if ("type" in value && "options" in value && missing.length === methods.length) {
      throw new FlowDefinitionError(
        `Flow "${flowName}": ${kind} must be ${what}, got its JSON form (${describe((value as { type: unknown }).type)} with options); construct it instead: ${example}.`,
      );
    }
  }
  throw new FlowDefinitionError(`Flow "${flowName}": ${kind} must be ${what} (${example}), got ${describe(value)}.`);
}
