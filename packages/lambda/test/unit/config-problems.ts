import { expect } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

/** The problems `loadConfig` lists for `env` (each a ConfigError's line), or none. */
export function configProblems(env: Record<string, string>, needs: Parameters<typeof loadConfig>[1]): string[] {
  try {
    loadConfig(env, needs);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  return [];
}
