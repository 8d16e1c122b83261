/**
 * isomorphic-git, imported on first I/O: a flow bundle that names a GitStorage does not carry it
 * (the bundler leaves the storage drivers' dynamic imports out), and a process that never touches
 * a Git repository never loads it. Also what isomorphic-git is given: a file system whose writes
 * are atomic, and an HTTP client with a deadline.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import type { GitHttpRequest, GitHttpResponse, HttpClient, PromiseFsClient } from "isomorphic-git";

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

let requestTimeoutMs = REQUEST_TIMEOUT_MS;

/**
 * Sets the deadline {@link timedHttp} gives requests by default (undefined: back to
 * {@link REQUEST_TIMEOUT_MS}). For this package's tests, which cannot wait two minutes for a
 * stalled server; the package does not export it.
 */
export function setRequestTimeout(ms: number | undefined): void {
  requestTimeoutMs = ms ?? REQUEST_TIMEOUT_MS;
}

/** A request given up at its deadline: the server accepted it but did not answer (or finish answering) in time. */
export class RequestTimeoutError extends Error {
  override readonly name = "RequestTimeoutError";

  constructor(readonly timeoutMs: number) {
    super(`no complete answer within ${timeoutMs / 1000} s`);
  }
}

/**
 * `http` with a deadline on every request, reading its answer included. The answer is read whole
 * before isomorphic-git sees it: isomorphic-git's reader of ref lists takes a body that fails
 * halfway (the deadline's abort, a reset connection) for one that ended, so a cut answer would read
 * as a branch with no commits. Whatever an aborted request fails with comes out as a
 * {@link RequestTimeoutError}.
 */
export function timedHttp(http: HttpClient, timeoutMs = requestTimeoutMs): HttpClient {
  return {
    async request(request) {
      const deadline = AbortSignal.timeout(timeoutMs);
      const signal = request.signal === undefined ? deadline : AbortSignal.any([request.signal, deadline]);
      let expire = () => {};
      // Also ends a read that the abort leaves waiting (a stream error between two reads is lost).
      const expired = new Promise<never>((_, reject) => {
        expire = () => reject(new RequestTimeoutError(timeoutMs));
        deadline.addEventListener("abort", expire, { once: true });
      });
      expired.catch(() => {});
      try {
        return await Promise.race([readWhole(http, { ...request, signal }), expired]);
      } catch (error) {
        throw deadline.aborted ? new RequestTimeoutError(timeoutMs) : error;
      } finally {
        deadline.removeEventListener("abort", expire);
      }
    },
  };
}

/** The answer to `request`, its body read to the end (an error while reading is the request's). */
async function readWhole(http: HttpClient, request: GitHttpRequest): Promise<GitHttpResponse> {
  const response = await http.request(request);
  if (response.body === undefined) return response;
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  return {
    ...response,
    body: (async function* () {
      yield* chunks;
    })(),
  };
}
