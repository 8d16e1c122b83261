import { resolve } from "node:path";

/**
 * tern's embedded home: the SQLite state file, local storage and caches. `TERN_HOME`, else
 * `./.tern` under the current directory.
 */
export function ternHome(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.TERN_HOME;
  return resolve(configured !== undefined && configured.trim() !== "" ? configured : ".tern");
}
