import { EnvironmentError } from "@tern/core/plugin";

/** What every option error starts with. */
export const WHERE = "FargateTaskEnvironment";

/** An error naming the option (a path such as `tags.team`) and the fix. */
export function optionError(option: string, message: string): EnvironmentError {
  return new EnvironmentError(`${WHERE}: ${option}: ${message}`);
}

/** A value as it appears in a message. */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A path into the options as messages name it: `capacityProviderStrategy[0].weight`. */
export function optionPath(path: readonly PropertyKey[]): string {
  return path.map((key, i) => (typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`)).join("");
}
