/**
 * isomorphic-git, imported on first I/O: a flow bundle that names a GitStorage does not carry it
 * (the bundler leaves the storage drivers' dynamic imports out), and a process that never touches
 * a Git repository never loads it.
 */
import type { HttpClient } from "isomorphic-git";

type Git = typeof import("isomorphic-git").default;

let loaded: Promise<{ readonly git: Git; readonly http: HttpClient }> | undefined;

export function isogit(): Promise<{ readonly git: Git; readonly http: HttpClient }> {
  loaded ??= Promise.all([import("isomorphic-git"), import("isomorphic-git/http/node")]).then(([core, http]) => ({
    git: core.default,
    http: http.default,
  }));
  return loaded;
}

/** The `code` isomorphic-git gives its errors (`NotFoundError`, `HttpError`, `PushRejectedError`, ...). */
export function gitCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}
