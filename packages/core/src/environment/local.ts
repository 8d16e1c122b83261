import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { describe } from "../describe.js";
import type { ExecutorConfig } from "../runner/executor.js";
import { executorFromJSON } from "../runner/executor.js";
import type { JsonValue } from "../runner/serialized.js";
import type { Storage } from "../storage/storage.js";
import {
  type Deployment,
  Environment,
  EnvironmentError,
  type EnvironmentOptions,
  type ExecuteContext,
} from "./environment.js";

/** Options of {@link LocalEnvironment}. */
export interface LocalEnvironmentOptions extends EnvironmentOptions {
  /**
   * The executor the runner uses for the flow's tasks, as JSON or an instance.
   * @default the flow's own executor
   */
  readonly executor?: ExecutorConfig | { toJSON(): ExecutorConfig };
}

const STDERR_TAIL_BYTES = 4096;

/**
 * Runs each flow run in a child process on the agent's machine (`tern execute <runId>`), so a
 * crashing flow cannot take the agent down. The default environment.
 *
 * @example
 * new Flow("etl", { environment: new LocalEnvironment({ labels: ["dev"] }) }, build);
 */
export class LocalEnvironment extends Environment {
  // Typed as string, not the literal, so that subclasses can declare their own type name.
  static override readonly type: string = "LocalEnvironment";
  static readonly builtIn = true;

  /** The executor override, as JSON. */
  readonly executor: ExecutorConfig | undefined;

  constructor(options: LocalEnvironmentOptions = {}) {
    super(options);
    const executor = options.executor;
    if (executor !== undefined) {
      if (typeof executor !== "object" || executor === null) {
        throw new EnvironmentError(
          `LocalEnvironment: executor: expected an executor or its JSON ({ type, options }), got ${describe(executor)}.`,
        );
      }
      const config = "toJSON" in executor && typeof executor.toJSON === "function" ? executor.toJSON() : executor;
      try {
        executorFromJSON(config as ExecutorConfig);
      } catch (error) {
        throw new EnvironmentError(`LocalEnvironment: executor: ${(error as Error).message}`, { cause: error });
      }
      this.executor = config as ExecutorConfig;
    }
  }

  protected override jsonOptions(): Record<string, JsonValue> {
    return this.executor === undefined ? {} : { executor: this.executor as unknown as JsonValue };
  }

  override async execute(_storage: Storage, _location: string, context: ExecuteContext): Promise<Deployment> {
    const [command, ...args] = context.runnerCommand;
    if (command === undefined) throw new EnvironmentError("LocalEnvironment: the agent gave no runner command.");
    const child = spawn(command, [...args, "execute", context.run.id], {
      env: { ...process.env, ...context.runnerEnv },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group: Ctrl-C on the agent stops the agent, which then waits for its runs,
      // instead of killing every run in flight with it.
      detached: true,
    });
    let stderrTail = "";
    const forward = context.onOutput ?? (() => {});
    createInterface({ input: child.stdout }).on("line", forward);
    createInterface({ input: child.stderr }).on("line", (line) => {
      stderrTail = `${stderrTail}${line}\n`.slice(-STDERR_TAIL_BYTES);
      forward(line);
    });
    const spawned = new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    const exited = new Promise<{ code: number | null; signal: string | null; stderrTail: string }>((resolve) => {
      child.once("close", (code, signal) => resolve({ code, signal, stderrTail }));
    });
    try {
      await spawned;
    } catch (error) {
      throw new EnvironmentError(
        `LocalEnvironment: could not start the runner (${context.runnerCommand.join(" ")}): ${(error as Error).message}`,
        { cause: error },
      );
    }
    return { details: { kind: "process", pid: child.pid ?? -1 }, exited };
  }
}

/** Rebuilds a LocalEnvironment from its JSON options. */
export function localEnvironmentFromJSON(options: Record<string, JsonValue>): LocalEnvironment {
  return new LocalEnvironment(options as unknown as LocalEnvironmentOptions);
}
