import { join, resolve } from "node:path";
import { TernError } from "../errors.js";
import { ternHome } from "../home.js";
import type { Backend } from "./types.js";

/** Opens a backend from its URL. */
export type BackendOpener = (url: string) => Promise<Backend>;

const openers = new Map<string, BackendOpener>([
  [
    "sqlite",
    async (url) => {
      const { SqliteBackend } = await import("./sqlite.js");
      const path = url.slice("sqlite://".length);
      if (path === "")
        throw new TernError("BACKEND_URL", `Backend URL "${url}" has no path; use sqlite:///absolute/path.db.`);
      return SqliteBackend.open({ path: resolve(path) });
    },
  ],
]);

/** Makes `<scheme>://...` URLs open with `opener` (e.g. `dynamodb`). */
export function registerBackendScheme(scheme: string, opener: BackendOpener): void {
  openers.set(scheme, opener);
}

/** The backend URL in force: `TERN_BACKEND`, else the SQLite file under `TERN_HOME`. */
export function backendUrl(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.TERN_BACKEND;
  if (configured !== undefined && configured.trim() !== "") return configured.trim();
  return `sqlite://${join(ternHome(env), "state.db")}`;
}

/**
 * Opens the backend named by `url` (default: {@link backendUrl}).
 *
 * @example
 * const backend = await openBackend("sqlite:///var/lib/tern/state.db");
 */
export async function openBackend(url: string = backendUrl()): Promise<Backend> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(url)?.[1];
  const opener = scheme === undefined ? undefined : openers.get(scheme);
  if (opener === undefined) {
    throw new TernError(
      "BACKEND_URL",
      `Unsupported backend URL "${url}". Use sqlite://<path>${[...openers.keys()]
        .filter((s) => s !== "sqlite")
        .map((s) => ` or ${s}://...`)
        .join("")}.`,
    );
  }
  return opener(url);
}
