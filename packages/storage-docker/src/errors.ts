/**
 * The registry client's errors: one `RegistryError` (a `TernError`) whose message names the
 * registry and repository, what failed and the fix, and never a credential. Registry answers are
 * mapped once, here, from the status and the Distribution error codes of their JSON body.
 */
import { isTernError, TernError, type TernErrorCode } from "@tern/core";

/** What a message says about where a request went. */
export interface RegistryErrorContext {
  /** The registry as image references name it (`host[:port]`). */
  readonly registry: string;
  readonly repository?: string;
  /** How the client authenticates, for messages: `basic credentials for user "ci"`, or undefined for none. */
  readonly auth?: string;
}

/** A failure talking to a registry: the status and the Distribution error code, when it answered. */
export class RegistryError extends TernError {
  readonly registry: string;
  readonly repository: string | undefined;
  /** The HTTP status, when the registry answered. */
  readonly status: number | undefined;
  /** The first Distribution error code of the answer (`MANIFEST_UNKNOWN`, `DENIED`, ...), when it gave one. */
  readonly registryCode: string | undefined;

  constructor(
    code: TernErrorCode,
    message: string,
    context: RegistryErrorContext,
    options: { cause?: unknown; retryable?: boolean; status?: number; registryCode?: string } = {},
  ) {
    super(code, message, { cause: options.cause, retryable: options.retryable });
    this.registry = context.registry;
    this.repository = context.repository;
    this.status = options.status;
    this.registryCode = options.registryCode;
  }
}

/** `Registry 127.0.0.1:5000, repository "flows/etl"`. */
export function where(context: RegistryErrorContext): string {
  return context.repository === undefined
    ? `Registry ${context.registry}`
    : `Registry ${context.registry}, repository ${JSON.stringify(context.repository)}`;
}

interface DistributionError {
  readonly code?: string;
  readonly message?: string;
}

/** The `errors` of a Distribution error body, or none when the body is not one. */
function distributionErrors(body: string): readonly DistributionError[] {
  try {
    const parsed = JSON.parse(body) as { errors?: unknown };
    return Array.isArray(parsed.errors) ? (parsed.errors as DistributionError[]) : [];
  } catch {
    return [];
  }
}

const NOT_FOUND_FIX: Record<string, string> = {
  MANIFEST_UNKNOWN: "no such manifest: check the tag or digest, and that the image was pushed to this repository",
  NAME_UNKNOWN: "no such repository: check the repository name (and, on a hosted registry, that it was created)",
  BLOB_UNKNOWN: "no such blob in this repository: push it first, or mount it from the repository that has it",
  BLOB_UPLOAD_UNKNOWN: "the upload session is gone (it expired or was cancelled): start the upload again",
};

/** The error for a registry's non-success answer to `what` (`push manifest latest`). */
export async function responseError(
  response: Response,
  what: string,
  context: RegistryErrorContext,
): Promise<RegistryError> {
  const body = await response.text().catch(() => "");
  const errors = distributionErrors(body);
  const registryCode = errors[0]?.code;
  const detail = errors
    .map((error) => [error.code, error.message].filter((part) => part !== undefined).join(": "))
    .join("; ");
  const status = response.status;
  const said = detail === "" ? `(${status})` : `(${status} ${detail})`;
  const head = `${where(context)}: cannot ${what} ${said}`;
  const options = { status, registryCode };
  if (status === 401) {
    return new RegistryError(
      "STORAGE_CREDENTIALS",
      context.auth === undefined
        ? `${head}: the registry asks for credentials. Give the client auth (a username and password or token).`
        : `${head}: the registry refused ${context.auth}. Check that they are valid, not expired, and may reach this repository.`,
      context,
      options,
    );
  }
  if (status === 403 || registryCode === "DENIED") {
    return new RegistryError(
      "STORAGE_ACCESS",
      `${head}: access denied. The credentials need ${what.startsWith("push") || what.startsWith("upload") || what.startsWith("mount") ? "push" : "pull"} rights on this repository.`,
      context,
      options,
    );
  }
  if (status === 404) {
    const fix = (registryCode !== undefined ? NOT_FOUND_FIX[registryCode] : undefined) ?? "not found";
    return new RegistryError(
      registryCode === "NAME_UNKNOWN" ? "STORAGE_BUCKET" : "STORAGE",
      `${head}: ${fix}.`,
      context,
      options,
    );
  }
  if (status === 429 || status >= 500) {
    return new RegistryError("STORAGE_UNAVAILABLE", `${head}: the registry is busy or failing; try again.`, context, {
      ...options,
      retryable: true,
    });
  }
  return new RegistryError("STORAGE", `${head}.`, context, options);
}

const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH"]);

/** The error for a request that got no answer (the network, a timeout), or `error` itself when it is already ours. */
export function requestError(error: unknown, what: string, context: RegistryErrorContext): Error {
  if (isTernError(error)) return error;
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause;
  const code = cause?.code ?? (error as NodeJS.ErrnoException | undefined)?.code;
  const name = (error as Error | undefined)?.name;
  if (name === "TimeoutError" || name === "AbortError") {
    return new RegistryError(
      "STORAGE_UNAVAILABLE",
      `${where(context)}: cannot ${what}: the registry did not answer in time.`,
      context,
      { cause: error, retryable: true },
    );
  }
  if (code !== undefined && UNREACHABLE.has(code)) {
    return new RegistryError(
      "STORAGE_UNAVAILABLE",
      `${where(context)}: cannot ${what}: the registry cannot be reached (${code}). Check the registry's host and port.`,
      context,
      { cause: error, retryable: true },
    );
  }
  return new RegistryError(
    "STORAGE",
    `${where(context)}: cannot ${what}: ${(error as Error | undefined)?.message ?? String(error)}`,
    context,
    { cause: error },
  );
}
