/**
 * Errors thrown by tern. Every error is a {@link TernError} with a stable `code`, so callers can
 * branch on the kind of failure without parsing messages, and every wrapped failure keeps its
 * `cause`. Tell a tern error with {@link isTernError}, not `instanceof`: two copies of
 * `@tern/core` (two installed versions, a bundle beside the CLI) each have their own classes.
 */

/** Marks tern's errors: a global symbol, so every copy of core recognises every copy's errors. */
const TERN_ERROR = Symbol.for("tern.error");

/**
 * Every code a tern error has, in every tern package (errors outside core, such as the storage
 * drivers', the Lambda's and the CLI's, use codes from this list too: one place to read them all).
 */
export type TernErrorCode =
  // Flows, tasks and their runs (core).
  | "FLOW_DEFINITION"
  | "PARAMETERS"
  | "PARAMETER_DEFAULT"
  | "SKIP"
  | "TASK_TIMEOUT"
  | "EXECUTOR_OPTIONS"
  | "EXECUTOR_TYPE"
  | "LOG_LIMIT"
  // Registration, bundles and storage (core, @tern/storage-cloud).
  | "REGISTER"
  | "REGISTER_IN_BUNDLE"
  | "NOT_BUILT"
  | "DIRTY_CHECKOUT"
  | "BUNDLE"
  | "BUNDLE_INTEGRITY"
  | "MANIFEST"
  | "DEPENDENCY"
  | "BLOB_CONFLICT"
  | "BLOB_KEY"
  | "STORAGE"
  | "STORAGE_ACCESS"
  | "STORAGE_BUCKET"
  | "STORAGE_CREDENTIALS"
  | "STORAGE_DUPLICATE"
  | "STORAGE_INTEGRITY"
  | "STORAGE_OPTIONS"
  | "STORAGE_TYPE"
  | "STORAGE_UNAVAILABLE"
  // Backends and run records (core, @tern/backend-dynamodb).
  | "BACKEND"
  | "BACKEND_OPTIONS"
  | "BACKEND_URL"
  | "NOT_FOUND"
  | "ANNOTATIONS"
  | "LOG_PAGE"
  | "REASON_REQUIRED"
  | "RUN_CONFLICT"
  | "RUN_FINISHED"
  | "RUN_GONE"
  | "RUN_INPUT"
  | "RUN_MOVED_ON"
  | "RUN_RUNNING"
  | "RUN_TERMINAL"
  | "RUN_TRANSITION"
  // Environments, agents and runners (core, @tern/env-fargate).
  | "ENVIRONMENT"
  | "ENVIRONMENT_TYPE"
  | "LAUNCH_UNCERTAIN"
  | "AGENT_OPTIONS"
  | "LEASE_OPTIONS"
  | "DEPLOY"
  | "RECONCILE"
  // The Lambda handlers' configuration and trigger rules (@tern/lambda).
  | "CONFIG"
  | "PATTERN"
  | "RULES"
  // A command called the wrong way (@tern/cli).
  | "USAGE";

/** What every tern error may be given besides its message. */
export interface TernErrorOptions {
  readonly cause?: unknown;
  /**
   * Whether the failure is transient (throttling, a 5xx, a service out of reach): the same
   * request may succeed later, so an event that met it should be delivered again and an HTTP
   * caller told to retry. Set where the error is made, by the code that knows. @default false
   */
  readonly retryable?: boolean;
}

/** Base class of every error tern throws on purpose. */
export class TernError extends Error {
  /** A stable, machine-readable identifier of the kind of failure. */
  readonly code: TernErrorCode;
  /** Whether the failure is transient and the same request may succeed later (see {@link TernErrorOptions}). */
  readonly retryable: boolean;

  constructor(code: TernErrorCode, message: string, options?: TernErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
    // Not enumerable: the brand stays out of JSON, logs and test equality.
    Object.defineProperty(this, TERN_ERROR, { value: true });
  }
}

/**
 * Whether `error` is a tern error (made by any copy of `@tern/core`), and of the given `code`
 * when one is given. Use it instead of `instanceof TernError`, which only knows this copy's class.
 */
export function isTernError(error: unknown): error is TernError;
export function isTernError<C extends TernErrorCode>(
  error: unknown,
  code: C,
): error is TernError & { readonly code: C };
export function isTernError(error: unknown, code?: TernErrorCode): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    (error as { [TERN_ERROR]?: unknown })[TERN_ERROR] === true &&
    (code === undefined || (error as TernError).code === code)
  );
}

/** Whether `error` is a tern error marked transient ({@link TernError.retryable}). */
export function isRetryable(error: unknown): boolean {
  return isTernError(error) && error.retryable;
}

/**
 * A flow or task definition is invalid: a cycle, a reference used in the wrong flow, a duplicate
 * parameter, a bad task option. Thrown when the definition is made, never at run time.
 */
export class FlowDefinitionError extends TernError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("FLOW_DEFINITION", message, options);
  }
}

/** A cycle in a flow's graph; `path` lists the task slugs around the cycle, first one repeated. */
export class FlowCycleError extends FlowDefinitionError {
  readonly path: readonly string[];

  constructor(flowName: string, path: readonly string[]) {
    super(
      `Flow "${flowName}": adding this dependency would create a cycle: ${path.join(" -> ")}. ` +
        "A flow must be a DAG; remove one of these dependencies.",
    );
    this.path = path;
  }
}

/** The parameters given to a run do not match the flow's declared parameters. */
export class ParameterError extends TernError {
  /** Names given to the run that the flow does not declare. */
  readonly unknown: readonly string[];
  /** Required parameters the run did not receive. */
  readonly missing: readonly string[];

  constructor(flowName: string, unknown: readonly string[], missing: readonly string[], declared: readonly string[]) {
    const parts: string[] = [];
    if (unknown.length > 0) {
      parts.push(`unknown parameter${unknown.length > 1 ? "s" : ""} ${list(unknown)}`);
    }
    if (missing.length > 0) {
      parts.push(`missing required parameter${missing.length > 1 ? "s" : ""} ${list(missing)}`);
    }
    const known = declared.length > 0 ? `It declares ${list(declared)}.` : "It declares no parameters.";
    super("PARAMETERS", `Flow "${flowName}": ${parts.join("; ")}. ${known} Nothing was run.`);
    this.unknown = unknown;
    this.missing = missing;
  }
}

/** Thrown by a task (through {@link skip}) to end its run in the `Skipped` state. */
export class SkipSignal extends TernError {
  constructor(message = "skipped by the task") {
    super("SKIP", message);
  }
}

/** Ends the calling task run in the `Skipped` state, with `message` as the reason. */
export function skip(message?: string): never {
  throw new SkipSignal(message);
}

/** The error a task's signal is aborted with, and its run's error, when `timeoutMs` passes. */
export class TaskTimeoutError extends TernError {
  readonly timeoutMs: number;

  constructor(slug: string, timeoutMs: number) {
    super("TASK_TIMEOUT", `Task "${slug}" timed out after ${timeoutMs} ms (its timeoutMs).`);
    this.timeoutMs = timeoutMs;
  }
}

function list(names: readonly string[]): string {
  return names.map((n) => `"${n}"`).join(", ");
}

/** The state store failed or could not be opened; the message names it and what to do. */
export class BackendError extends TernError {
  constructor(message: string, options?: TernErrorOptions) {
    super("BACKEND", message, options);
  }
}

/** A run changed between read and write (compare-and-swap lost). Re-read the run and decide again. */
export class RunConflictError extends TernError {
  readonly runId: string;
  readonly expectedRevision: number;
  readonly actualRevision: number | undefined;

  constructor(runId: string, expectedRevision: number, actualRevision: number | undefined) {
    super(
      "RUN_CONFLICT",
      `Run ${runId} changed while it was being updated (expected revision ${expectedRevision}, found ${actualRevision ?? "none"}). ` +
        "Another agent or runner wrote it first; read it again before retrying.",
      // Lost to another writer: the same request, made again after a fresh read, may succeed.
      { retryable: true },
    );
    this.runId = runId;
    this.expectedRevision = expectedRevision;
    this.actualRevision = actualRevision;
  }
}

/** A run, flow or flow version that does not exist. */
export class NotFoundError extends TernError {
  readonly kind: "run" | "flow" | "flowVersion" | "blob";
  readonly id: string;

  constructor(kind: "run" | "flow" | "flowVersion" | "blob", id: string, message: string, options?: TernErrorOptions) {
    super("NOT_FOUND", message, options);
    this.kind = kind;
    this.id = id;
  }

  /**
   * A flow version that a backend does not hold, named with the backend's URL; with `runId`,
   * said of the run that needs it.
   */
  static flowVersion(
    project: string,
    flow: string,
    version: number,
    backendUrl: string,
    runId?: string,
  ): NotFoundError {
    const what = `"${flow}" version ${version} (project "${project}") is not in ${backendUrl}.`;
    return new NotFoundError(
      "flowVersion",
      `${project}/${flow}@${version}`,
      runId === undefined ? `Flow ${what}` : `Run ${runId}: flow ${what}`,
    );
  }

  /**
   * A run asked of a flow that has no registered version (or not `version`), with how to register
   * it. Its kind is `flowVersion`: a run needs a version, and that is what was looked up.
   */
  static unregistered(project: string, flow: string, version: number | undefined, backendUrl: string): NotFoundError {
    const which = version === undefined ? "" : ` version ${version}`;
    return new NotFoundError(
      "flowVersion",
      `${project}/${flow}@${version ?? "latest"}`,
      `Flow "${flow}"${which} is not registered in project "${project}" (${backendUrl}). ` +
        `Register it with \`tern register <file> --project "${project}"\`, or check \`tern flows\`.`,
    );
  }

  /** A run that a backend does not hold, named with the backend's URL. */
  static run(runId: string, backendUrl: string): NotFoundError {
    return new NotFoundError(
      "run",
      runId,
      `Run ${runId} does not exist in ${backendUrl}. Check the id with \`tern runs\`.`,
    );
  }

  /** A stored object that does not exist; `url` names it as its store does (`describe(key)`). */
  static blob(key: string, url: string, options?: TernErrorOptions): NotFoundError {
    return new NotFoundError("blob", key, `${url} does not exist.`, options);
  }

  /**
   * A registered flow's manifest or bundle gone from its storage: registered once, deleted since
   * (lifecycle rules, a clean-up job). `flow` names the flow as messages do; `url` is the object's.
   */
  static flowBlob(
    flow: string,
    part: "manifest" | "bundle",
    key: string,
    url: string,
    options?: TernErrorOptions,
  ): NotFoundError {
    return new NotFoundError(
      "blob",
      key,
      `Flow ${flow}: its ${part} ${url} is missing from storage. It was deleted (check lifecycle rules or ` +
        "clean-up jobs on the storage); register the flow again.",
      options,
    );
  }
}
