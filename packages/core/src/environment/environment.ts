import type { FlowVersionRecord, RunRecord } from "../backend/types.js";
import { describe } from "../describe.js";
import { TernError, type TernErrorOptions } from "../errors.js";
import type { JsonValue } from "../runner/serialized.js";
import type { Manifest } from "../storage/manifest.js";
import type { Storage } from "../storage/storage.js";

/** Type names of the environments tern ships; a custom environment may not take them. */
export const BUILT_IN_ENVIRONMENT_TYPES: readonly string[] = ["LocalEnvironment", "FargateTaskEnvironment"];

/** What `onStart` and `onExit` receive, in the process that runs the flow. */
export interface EnvironmentHookContext {
  readonly runId: string;
  readonly flow: string;
  readonly version: number;
  readonly parameters: Readonly<Record<string, unknown>>;
}

/** What `onExit` additionally receives: how the run ended. */
export interface EnvironmentExitContext extends EnvironmentHookContext {
  readonly state: "Success" | "Failed" | "Cancelled";
  readonly reason?: string;
}

/** What an agent hands to `setup`. */
export interface SetupContext {
  readonly flowVersion: FlowVersionRecord;
  readonly manifest: Manifest;
  /**
   * Saves annotations on the flow version (for example a task definition's ARN), so that later
   * setups of the same version find them on `flowVersion.annotations` without asking anyone.
   */
  annotate(annotations: Readonly<Record<string, JsonValue>>): Promise<void>;
}

/** What an agent hands to `execute`. */
export interface ExecuteContext {
  readonly run: RunRecord;
  readonly flowVersion: FlowVersionRecord;
  readonly manifest: Manifest;
  /** The URL of the agent's backend (`dynamodb://...`), for runners that start elsewhere. */
  readonly backendUrl?: string;
  /**
   * Epoch ms by which `execute` should return (its caller, a Lambda invocation, ends then):
   * retries that would outlast it stop, and the launch is left to be handed back
   * (`LaunchUncertainError`) instead. @default no deadline
   */
  readonly deadlineMs?: number;
  /**
   * Records details on the run before `execute` returns (a launch attempt about to be made), so
   * an agent that takes the run over after a crash continues from there. Absent when the caller
   * cannot write the run.
   */
  readonly saveDeployment?: (details: Readonly<Record<string, JsonValue>>) => Promise<void>;
  /** The command that starts a runner; append `execute <runId>`. */
  readonly runnerCommand: readonly string[];
  /** Environment variables a runner needs to reach the same backend (TERN_HOME, TERN_BACKEND). */
  readonly runnerEnv: Readonly<Record<string, string>>;
  /** Receives each line a local runner prints, for the agent's log. @default lines are dropped */
  readonly onOutput?: (line: string) => void;
}

/** Where an environment put a run. */
export interface Deployment {
  /** JSON details stored on the run (process id, task ARN...). */
  readonly details: Readonly<Record<string, JsonValue>>;
  /** For a local process: settles when it exits, so the agent can tell a crash from a report. */
  readonly exited?: Promise<{
    readonly code: number | null;
    readonly signal: string | null;
    readonly stderrTail: string;
  }>;
}

/** Options every environment takes. */
export interface EnvironmentOptions {
  /** Agents must have all of these labels to take the flow's runs. @default [] */
  readonly labels?: readonly string[];
  /** Runs before the flow starts, in the process that runs it; a throw fails the run. */
  readonly onStart?: (context: EnvironmentHookContext) => void | Promise<void>;
  /** Runs after the flow ends, also when it failed, in the process that ran it. */
  readonly onExit?: (context: EnvironmentExitContext) => void | Promise<void>;
  /**
   * Packages the flow needs where it runs; each must resolve at registration. A custom
   * environment class declares its own with `get dependencies()` instead. @default []
   */
  readonly dependencies?: readonly string[];
}

/**
 * A bad environment definition or option, or an environment that failed to launch a run (then
 * `retryable` says whether the same launch may succeed later).
 */
export class EnvironmentError extends TernError {
  constructor(message: string, options?: TernErrorOptions) {
    super("ENVIRONMENT", message, options);
  }
}

/**
 * Thrown by `execute` when it cannot tell whether the launch happened (the service kept failing
 * or timing out after the request may have landed). The agent leaves the run Submitted, with
 * whatever bookkeeping was saved; the sweep hands it back after its grace period, and the next
 * launch must be idempotent with this one (ECS: the same clientToken).
 */
export class LaunchUncertainError extends TernError {
  constructor(message: string, options?: { cause?: unknown }) {
    // Handed back and launched again later with the same token: transient by nature.
    super("LAUNCH_UNCERTAIN", message, { ...options, retryable: true });
  }
}

/**
 * Where and how a flow's runs execute. An agent rebuilds the environment from its JSON
 * (`{ type, options }`), calls `setup(storage)` and then `execute(storage, location, context)`.
 * Subclasses declare their own `static readonly type`, which must not be a built-in name.
 */
export abstract class Environment {
  /** The type name the agent finds the class by. Every subclass declares its own. */
  static readonly type: string = "Environment";

  readonly labels: readonly string[];
  readonly onStart: EnvironmentOptions["onStart"];
  readonly onExit: EnvironmentOptions["onExit"];
  readonly #dependencies: readonly string[];

  constructor(options: EnvironmentOptions = {}) {
    const cls = new.target as unknown as typeof Environment & { readonly builtIn?: boolean };
    const className = cls.name || "(anonymous class)";
    if (!Object.hasOwn(cls, "type") || typeof cls.type !== "string" || cls.type.trim() === "") {
      throw new EnvironmentError(
        `${className} must declare its own type name: add \`static readonly type = "${className}"\` to the class. ` +
          "The agent finds environments by that name; an inherited one would load the wrong class.",
      );
    }
    if (BUILT_IN_ENVIRONMENT_TYPES.includes(cls.type) && !Object.hasOwn(cls, "builtIn")) {
      throw new EnvironmentError(
        `${className} declares type "${cls.type}", which is a built-in environment. Give it a name of its own ` +
          `(for example "${className === cls.type ? `Custom${className}` : className}").`,
      );
    }
    if (typeof options !== "object" || options === null) {
      throw new EnvironmentError(`${className}: options must be an object, got ${describe(options)}.`);
    }
    this.labels = Object.freeze(checkLabels(options.labels ?? [], className));
    for (const hook of ["onStart", "onExit"] as const) {
      if (options[hook] !== undefined && typeof options[hook] !== "function") {
        throw new EnvironmentError(`${className}: ${hook} must be a function, got ${describe(options[hook])}.`);
      }
    }
    this.onStart = options.onStart;
    this.onExit = options.onExit;
    this.#dependencies = checkDependencies(options.dependencies ?? [], `${className}: dependencies`);
    const declared = declaredDependencies(cls, className, options.dependencies);
    if (declared !== undefined) {
      // The subclass's getter, checked on every read (registration reads it for the manifest).
      Object.defineProperty(this, "dependencies", {
        get: () => checkDependencies(declared.call(this), `${className}: get dependencies()`),
        set: refuseAssignment,
        configurable: true,
      });
    }
  }

  /**
   * Packages the flow needs where it runs, each checked at registration (it must resolve from the
   * flow's file). A subclass declares its own by overriding this getter (Prefect's
   * `dependencies` property); an instance is given them with the `dependencies` option.
   */
  get dependencies(): readonly string[] {
    return this.#dependencies;
  }

  /**
   * Refuses an assignment with the way to do it (`never`: tsc refuses it too, but registration
   * compiles flows without type checks).
   */
  set dependencies(_value: never) {
    refuseAssignment();
  }

  /** The class's type name. */
  get type(): string {
    return (this.constructor as typeof Environment).type;
  }

  /** Whether tern ships this environment (agents rebuild it without user code). */
  get builtIn(): boolean {
    return Object.hasOwn(this.constructor, "builtIn");
  }

  /**
   * Prepares what runs need (a task definition, a directory). Called before every `execute`;
   * agents pass a context, callers that have no flow version may not.
   */
  async setup(_storage: Storage, _context?: SetupContext): Promise<void> {}

  /** Starts the run described by `context` and says where it went. */
  abstract execute(storage: Storage, location: string, context: ExecuteContext): Promise<Deployment>;

  /** Subclass options as JSON (no credentials, no functions). */
  protected jsonOptions(): Record<string, JsonValue> {
    return {};
  }

  /** The environment as JSON: what a manifest records. */
  toJSON(): { type: string; options: Record<string, JsonValue> } {
    return {
      type: this.type,
      options: { labels: [...this.labels], dependencies: [...this.dependencies], ...this.jsonOptions() },
    };
  }
}

/** A copy of `value` if it is a list of package names; else an error naming it. */
function checkDependencies(value: unknown, where: string): readonly string[] {
  if (!Array.isArray(value) || value.some((d) => typeof d !== "string" || d.trim() === "")) {
    throw new EnvironmentError(
      `${where} must be a list of package names (for example ["pg"]), got ${describe(value)}.`,
    );
  }
  return Object.freeze([...value]);
}

function refuseAssignment(): never {
  throw new EnvironmentError(
    'An environment\'s dependencies cannot be assigned. Declare them in the class with `get dependencies() { return ["pg"]; }`, or pass them as an option: `super({ ...options, dependencies: ["pg"] })`.',
  );
}

/**
 * The `get dependencies()` a subclass of Environment declares, if any. Refuses one that is not a
 * getter (a method, a prototype value), and one given the `dependencies` option too, which it
 * would silently hide.
 */
function declaredDependencies(
  cls: typeof Environment,
  className: string,
  option: unknown,
): (() => unknown) | undefined {
  for (
    let proto = cls.prototype;
    proto !== Environment.prototype && proto !== null;
    proto = Object.getPrototypeOf(proto)
  ) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, "dependencies");
    if (descriptor === undefined) continue;
    if (typeof descriptor.get !== "function") {
      throw new EnvironmentError(
        `${className} declares dependencies as ${describe(descriptor.value ?? descriptor.set)}; declare them with a getter: \`get dependencies() { return ["pg"]; }\`.`,
      );
    }
    if (option !== undefined) {
      throw new EnvironmentError(
        `${className} declares \`get dependencies()\` and was also given the dependencies option ${describe(option)}, which the getter hides. Declare them in one place.`,
      );
    }
    return descriptor.get;
  }
  return undefined;
}

/** Validates labels: strings, not empty or whitespace, no surrounding spaces; duplicates dropped. */
export function checkLabels(labels: unknown, where: string): string[] {
  if (!Array.isArray(labels)) {
    throw new EnvironmentError(`${where}: labels must be a list of strings, got ${describe(labels)}.`);
  }
  for (const label of labels) {
    if (typeof label !== "string") {
      throw new EnvironmentError(
        `${where}: label ${describe(label)} is not a string. Labels are non-empty names such as "dev" or "gpu".`,
      );
    }
    if (label.trim() === "") {
      throw new EnvironmentError(
        `${where}: label ${describe(label)} is empty or whitespace. Labels are non-empty names such as "dev" or "gpu".`,
      );
    }
    if (label.trim() !== label) {
      throw new EnvironmentError(
        `${where}: label ${describe(label)} has surrounding spaces; use ${describe(label.trim())}.`,
      );
    }
  }
  return [...new Set(labels as string[])];
}
