/**
 * isomorphic-git, imported on first I/O: a flow bundle that names a GitStorage does not carry it
 * (the bundler leaves the storage drivers' dynamic imports out), and a process that never touches
 * a Git repository never loads it. Also what isomorphic-git is given: a file system whose writes
 * are atomic, and an HTTP client with a deadline.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import type { HttpClient, PromiseFsClient } from "isomorphic-git";

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

/**
 * Node's file system, but a file is written to a temporary name, flushed and renamed into place:
 * isomorphic-git writes objects and refs in place, so a crash (or two writers of the same object)
 * could leave a truncated file that it would never write again.
 */
export const atomicFs: PromiseFsClient = {
  promises: {
    readFile: fs.promises.readFile,
    unlink: fs.promises.unlink,
    readdir: fs.promises.readdir,
    mkdir: fs.promises.mkdir,
    rmdir: fs.promises.rmdir,
    stat: fs.promises.stat,
    lstat: fs.promises.lstat,
    readlink: fs.promises.readlink,
    symlink: fs.promises.symlink,
    chmod: fs.promises.chmod,
    async writeFile(path: string, data: Uint8Array | string, options?: unknown) {
      const temp = `${path}.${randomUUID()}.tmp`;
      const handle = await fs.promises.open(temp, "w", (options as { mode?: number } | undefined)?.mode);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        await fs.promises.rename(temp, path);
      } catch (error) {
        await fs.promises.rm(temp, { force: true });
        throw error;
      }
    },
  },
};

/** How long one HTTP request may take before it is given up (a stalled server would hang the store). */
export const REQUEST_TIMEOUT_MS = 120_000;

/** `http` with a deadline on every request. */
export function timedHttp(http: HttpClient): HttpClient {
  return {
    request: (request) =>
      http.request({ ...request, signal: request.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
  };
}
