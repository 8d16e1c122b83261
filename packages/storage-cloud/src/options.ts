/**
 * The drivers' options, checked by one zod schema per driver: a strict object (an unknown key is
 * named, with the valid ones), a check per option, and the rules between options as checks of the
 * whole. Messages are written here and in the schemas, so zod's locales are not needed.
 */

import { checkStorageOptions, registerStorageOptionsSchema } from "@tern/core/plugin";
import * as z from "zod/mini";

/** Compiles only when the two types are the same (each assignable to the other). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** The options every storage takes (`StorageOptions`); the storage checks the prefix itself. */
const storageOptionsShape = {
  prefix: z.optional(z.string()),
  external: z.optional(z.readonly(z.array(z.string()))),
};

/** A driver's whole options object, from the options it takes besides every storage's. */
type DriverSchema<Shape extends z.core.$ZodLooseShape> = z.ZodMiniObject<
  typeof storageOptionsShape & Shape,
  z.core.$strict
>;

/**
 * The options check of the driver named `driver`, from the options its storage takes besides every
 * storage's (`shape`) and the rules between options. It compiles only when the schema parses
 * exactly `T`, the options interface the driver documents, so the two cannot drift apart. It gives
 * back the options it was given, or throws a `STORAGE_OPTIONS` error naming every problem (core's
 * `checkStorageOptions`). The schema is registered under the driver's name, so that
 * `tern register --storage-option key=value` parses values as the driver expects them.
 *
 * @example
 * const checkOptions = optionsCheck<S3StorageOptions>("S3Storage")({ bucket: z.string(), ... }, rule(...));
 */
export function optionsCheck<T>(driver: string) {
  return <Shape extends z.core.$ZodLooseShape>(
    shape: Shape & (Same<z.output<DriverSchema<Shape>>, T> extends true ? unknown : never),
    ...rules: z.core.$ZodCheck<z.output<DriverSchema<Shape>>>[]
  ): ((options: T) => T) => {
    const own: Shape = shape;
    const schema: DriverSchema<Shape> = z.strictObject({ ...storageOptionsShape, ...own }).check(...rules);
    registerStorageOptionsSchema(driver, schema);
    return (options) => {
      checkStorageOptions(driver, schema, options);
      return options;
    };
  };
}

/** A check with its message. */
export function rule<T>(holds: (value: T) => boolean, message: string | ((value: T) => string)) {
  return z.superRefine<T>((value, context) => {
    if (!holds(value))
      context.addIssue({ code: "custom", message: typeof message === "string" ? message : message(value) });
  });
}

/** A string option checked by `problem`, which says what is wrong with a value (`undefined`: nothing). */
export function checkedString(problem: (value: string) => string | undefined) {
  return z.string().check(
    rule(
      (value) => problem(value) === undefined,
      (value) => problem(value) ?? "",
    ),
  );
}

/** An object given as is (a client, SDK options), recognised by `holds`. */
function instance<T>(holds: (value: unknown) => boolean, message: string) {
  return z.custom<T>((value) => typeof value === "object" && value !== null && holds(value), message);
}

/** An optional SDK client given as is, recognised by one of its methods. */
export function givenClient<T>(method: string, message: string) {
  return z.optional(instance<T>((value) => typeof (value as Record<string, unknown>)[method] === "function", message));
}

/**
 * Optional options for the client tern builds (`clientConfig`, `storageOptions`): an object whose
 * endpoint, kept in the storage's JSON, carries no credentials.
 */
export function clientOptions<T>(option: string, sdk: string, endpoint: string, endpointOf: (options: T) => unknown) {
  return z.optional(
    instance<T>(() => true, `${option} must be an object of ${sdk} options.`).check(
      ...endpointRules<T>(`${option}.${endpoint}`, endpointOf),
    ),
  );
}

/**
 * Whether an endpoint is a URL without credentials (user info, a query such as `?access_token=`,
 * a fragment): endpoints are kept in the storage's JSON, so they would be stored with every flow.
 * The messages do not repeat the value, so a secret does not reach logs either.
 */
function endpointRules<T>(option: string, endpointOf: (value: T) => unknown) {
  const isUrl = (endpoint: unknown) => endpoint === undefined || URL.canParse(String(endpoint));
  return [
    rule<T>((value) => isUrl(endpointOf(value)), `${option} is not a URL (for example https://storage.example.com).`),
    rule<T>((value) => {
      const endpoint = endpointOf(value);
      if (endpoint === undefined || !isUrl(endpoint)) return true;
      const url = new URL(String(endpoint));
      return url.username === "" && url.password === "" && url.search === "" && url.hash === "";
    }, `${option} carries credentials or parameters (user info, a query or a fragment); it is stored with every flow, so it may not. Give credentials through the SDK's default chain or the client's credentials option.`),
  ];
}
