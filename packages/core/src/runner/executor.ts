import { describe } from "../describe.js";
import { TernError } from "../errors.js";

/** An executor as JSON: what a manifest records and {@link executorFromJSON} rebuilds. */
export interface ExecutorConfig {
  readonly type: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/**
 * Decides how the runner schedules task runs. The runner keeps the ready queue in definition
 * order and never has more than `maxConcurrency` task runs in flight (a run waiting to retry
 * keeps its place).
 */
export interface Executor {
  /** The executor's type name, as in its JSON form. */
  readonly type: string;
  /** Most task runs in flight at once. */
  readonly maxConcurrency: number;
  /** The executor as JSON. */
  toJSON(): ExecutorConfig;
}

/**
 * Runs one task run at a time, in a deterministic order: upstream before downstream, ties
 * broken by definition order. The default executor.
 */
export class LocalExecutor implements Executor {
  readonly type = "LocalExecutor";
  readonly maxConcurrency = 1;

  toJSON(): ExecutorConfig {
    return { type: this.type, options: {} };
  }
}

/** Options of {@link ConcurrentExecutor}. */
export interface ConcurrentExecutorOptions {
  /**
   * Most task runs in flight at once. Tasks run in this process's event loop, so this bounds
   * overlapping I/O, not CPU parallelism.
   * @default 16
   */
  readonly maxConcurrency?: number;
}

/** Runs independent task runs concurrently in this process, at most `maxConcurrency` at once. */
export class ConcurrentExecutor implements Executor {
  readonly type = "ConcurrentExecutor";
  readonly maxConcurrency: number;

  constructor(options: ConcurrentExecutorOptions = {}) {
    const max = options.maxConcurrency ?? 16;
    if (!(Number.isSafeInteger(max) && max >= 1)) {
      throw new TernError(
        "EXECUTOR_OPTIONS",
        `ConcurrentExecutor: maxConcurrency must be an integer >= 1, got ${describe(max)}.`,
      );
    }
    this.maxConcurrency = max;
  }

  toJSON(): ExecutorConfig {
    return { type: this.type, options: { maxConcurrency: this.maxConcurrency } };
  }
}

/** Rebuilds a built-in executor from its JSON form. */
export function executorFromJSON(config: ExecutorConfig): Executor {
  switch (config?.type) {
    case "LocalExecutor":
      return new LocalExecutor();
    case "ConcurrentExecutor":
      return new ConcurrentExecutor(config.options as ConcurrentExecutorOptions);
    default:
      throw new TernError(
        "EXECUTOR_TYPE",
        `Unknown executor type ${describe(config?.type)}. Known types: LocalExecutor, ConcurrentExecutor.`,
      );
  }
}
