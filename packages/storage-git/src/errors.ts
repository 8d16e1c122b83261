/**
 * isomorphic-git's and Node's errors as tern errors that name the repository (never with
 * credentials), what failed and the option that fixes it.
 */
import { isTernError, TernError } from "@tern/core";
import { gitCode, RequestTimeoutError } from "./git.js";

/** What the messages say about the repository and its auth. */
export interface ErrorContext {
  /** The repository's URL as messages show it (it never carries credentials). */
  readonly url: string;
  readonly branch: string;
  /** How the store authenticates, for messages: `the token in $GITHUB_TOKEN`, or undefined for none. */
  readonly auth: string | undefined;
}

const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EPIPE",
]);

export function gitError(error: unknown, what: string, context: ErrorContext): Error {
  if (isTernError(error)) return error;
  const where = `Git repository ${context.url} (branch ${context.branch})`;
  if (gitCode(error) === "HttpError") {
    const status = (error as { data?: { statusCode?: number } }).data?.statusCode;
    if (status === 401) {
      return new TernError(
        "STORAGE_CREDENTIALS",
        context.auth === undefined
          ? `${where}: cannot ${what}: the server asks for credentials (401). Give GitStorage an auth option, for example auth: { tokenEnv: "GIT_TOKEN" } with a token in that environment variable.`
          : `${where}: cannot ${what}: the server refused ${context.auth} (401). Check that the token is valid and not expired.`,
        { cause: error },
      );
    }
    if (status === 403) {
      return new TernError(
        "STORAGE_ACCESS",
        context.auth === undefined
          ? `${where}: cannot ${what}: access denied (403). Give GitStorage an auth option with a token that may read (and, to register, push to) the repository.`
          : `${where}: cannot ${what}: access denied (403) with ${context.auth}. The token needs read access to fetch and write access (GitHub: contents write) to push.`,
        { cause: error },
      );
    }
    if (status === 404) {
      return new TernError(
        "STORAGE_BUCKET",
        context.auth === undefined
          ? `${where}: cannot ${what}: no repository at this URL (404). Check the url option; a private repository also answers 404 without credentials (give auth).`
          : `${where}: cannot ${what}: no repository at this URL (404). Check the url option, and that ${context.auth} may see the repository (hosting services answer 404 to a token without access).`,
        { cause: error },
      );
    }
    return new TernError("STORAGE_UNAVAILABLE", `${where}: cannot ${what}: the server answered ${status}.`, {
      cause: error,
      retryable: status !== undefined && (status >= 500 || status === 429),
    });
  }
  if (gitCode(error) === "NotFoundError" && (error as { data?: { what?: string } }).data?.what === "HEAD") {
    return new TernError(
      "STORAGE",
      `${where}: cannot ${what}: the repository's HEAD names a branch that does not exist, and isomorphic-git cannot fetch from such a repository. Make HEAD name an existing branch on the server (git symbolic-ref HEAD refs/heads/${context.branch}, or the repository's default branch setting).`,
      { cause: error },
    );
  }
  if (error instanceof RequestTimeoutError) {
    return new TernError(
      "STORAGE_UNAVAILABLE",
      `${where}: cannot ${what}: the server did not complete its answer within ${error.timeoutMs / 1000} s, so the request was given up.`,
      { cause: error, retryable: true },
    );
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const name = (error as Error | undefined)?.name;
  if (code === "ABORT_ERR" || name === "TimeoutError" || name === "AbortError") {
    return new TernError("STORAGE_UNAVAILABLE", `${where}: cannot ${what}: the server did not answer in time.`, {
      cause: error,
      retryable: true,
    });
  }
  if (code !== undefined && UNREACHABLE.has(code)) {
    return new TernError("STORAGE_UNAVAILABLE", `${where}: cannot ${what}: the server cannot be reached (${code}).`, {
      cause: error,
      retryable: true,
    });
  }
  return new TernError("STORAGE", `${where}: cannot ${what}: ${(error as Error).message}`, { cause: error });
}
