/** What a graph run takes and gives: `flow.run(...)`'s options and the run's result. */
import type { Executor } from "./executor.js";
import type { LogRecord } from "./logger.js";
import type { FlowRunState, TaskRunState } from "./states.js";
import type { TaskRun } from "./task-run.js";

/** Options of `flow.run(...)`. */
export interface RunOptions {
  /** Values of the flow's parameters. */
  readonly parameters?: Readonly<Record<string, unknown>>;
  /**
   * Overrides the flow's executor for this run.
   * @default the flow's executor, else a LocalExecutor
   */
  readonly executor?: Executor;
  /** Aborting it cancels the run. */
  readonly signal?: AbortSignal;
  /**
   * The run's id, as seen by tasks in `ctx.runId`.
   * @default a random UUID
   */
  readonly runId?: string;
  /**
   * Print what tasks log: `console.*` output passes through unchanged, logger records go to
   * stderr as `time LEVEL [slug] message`. Everything is captured either way.
   * @default true
   */
  readonly echo?: boolean;
  /** Called on every task-run state change, synchronously; keep it cheap. */
  readonly onTaskRunState?: (taskRun: TaskRun) => void;
  /** Called for every log record, synchronously; keep it cheap. */
  readonly onLog?: (taskRun: TaskRun, record: LogRecord) => void;
}

/** What a graph run produced; `Flow.run` adds the typed outputs. */
export interface GraphRunResult {
  readonly runId: string;
  readonly flow: string;
  readonly state: FlowRunState;
  readonly message?: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly taskRuns: readonly TaskRun[];
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  /** Results by node index (internal: `Flow.run` turns them into outputs). */
  readonly nodeResults: readonly unknown[];
  readonly nodeStates: readonly TaskRunState[];
}
