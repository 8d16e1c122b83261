import { hostname } from "node:os";
import type { Backend, RunLogRecord, RunRecord } from "../backend/types.js";
import { isTerminalRunState } from "../backend/types.js";
import type { Environment, EnvironmentExitContext, EnvironmentHookContext } from "../environment/environment.js";
import { RunConflictError, TernError } from "../errors.js";
import type { FlowRunResult } from "../flow/flow.js";
import type { TaskRun } from "../runner/engine.js";
import { type Executor, type ExecutorConfig, executorFromJSON } from "../runner/executor.js";
import type { LogRecord } from "../runner/logger.js";
import { type SerializedValue, serializeRun, serializeTaskRun } from "../runner/serialize.js";
import { resolveRun } from "./deploy.js";

/** Options of {@link executeRun}. */
export interface ExecuteRunOptions {
  readonly backend: Backend;
  /** How often the runner flushes task states and logs, and checks for cancellation. @default 500 */
  readonly flushIntervalMs?: number;
  /** Progress lines. @default none */
  readonly log?: (line: string) => void;
  /**
   * Aborting it stops the flow (the runner got SIGTERM: a stopped container, Ctrl-C). The run
   * ends Failed with the abort reason, or Cancelled if it was being cancelled.
   */
  readonly signal?: AbortSignal;
}

/** How a run ended. */
export interface ExecuteRunResult {
  readonly runId: string;
  readonly state: "Success" | "Failed" | "Cancelled";
  readonly reason: string;
}

/**
 * The runner (`tern execute <runId>`): loads the run and its flow version, fetches and verifies
 * the bundle, imports it, calls `onStart`, runs the DAG with the run's parameters, reports task
 * runs, logs and outputs as it goes, calls `onExit`, and records the final state with a reason.
 */
export async function executeRun(runId: string, options: ExecuteRunOptions): Promise<ExecuteRunResult> {
  const { backend } = options;
  const log = options.log ?? (() => {});
  let run: RunRecord | undefined;
  try {
    const resolved = await resolveRun(backend, runId);
    run = resolved.run;
    if (isTerminalRunState(run.state)) {
      throw new TernError(
        "RUN_FINISHED",
        `Run ${runId} already ended ${run.state}${run.reason ? `: ${run.reason}` : ""}; nothing to execute.`,
      );
    }
    if (run.state === "Running") {
      throw new TernError(
        "RUN_RUNNING",
        `Run ${runId} is already Running${run.reason ? ` (${run.reason})` : ""}; a run is executed once. Cancel it, or start a new run.`,
      );
    }
    if (run.state === "Cancelling") return await finish(backend, runId, "Cancelled", "cancelled before it started");
    const { flow } = await resolved.storage.load(resolved.flowVersion.location, {
      expectedHash: resolved.flowVersion.manifestHash,
      label: resolved.label,
    });
    const started = await markRunning(backend, runId);
    if (started.kind !== "running") return started.result;
    run = started.run;
    log(`running ${resolved.label}`);

    const environment = flow.environment as Environment | undefined;
    const hookContext: EnvironmentHookContext = {
      runId,
      flow: run.flow,
      version: run.version,
      parameters: run.parameters,
    };
    const exit = async (
      state: ExecuteRunResult["state"],
      reason: string,
      outputs?: Readonly<Record<string, SerializedValue>>,
    ): Promise<ExecuteRunResult> => {
      let finalState = state;
      let finalReason = reason;
      if (environment?.onExit !== undefined) {
        try {
          const exitContext: EnvironmentExitContext = { ...hookContext, state, reason };
          await environment.onExit(exitContext);
        } catch (error) {
          if (finalState === "Success") finalState = "Failed";
          finalReason = `${finalReason}; onExit failed: ${(error as Error).message}`;
        }
      }
      return finish(backend, runId, finalState, finalReason, outputs);
    };

    if (environment?.onStart !== undefined) {
      try {
        await environment.onStart(hookContext);
      } catch (error) {
        return await exit("Failed", `onStart failed: ${(error as Error).message}`);
      }
    }

    const reporter = new Reporter(backend, runId, options.flushIntervalMs ?? 500, options.signal);
    const executorConfig = resolved.manifest.environment.options.executor as ExecutorConfig | undefined;
    const executor: Executor | undefined = executorConfig === undefined ? undefined : executorFromJSON(executorConfig);
    let result: FlowRunResult;
    try {
      result = await flow.run({
        runId,
        parameters: run.parameters,
        ...(executor === undefined ? {} : { executor }),
        signal: reporter.signal,
        // Task output also goes to this process's stdout/stderr: the agent's log locally,
        // the task's log stream on Fargate, and the last words of a runner that dies.
        echo: true,
        onTaskRunState: (taskRun) => reporter.taskRunChanged(taskRun),
        onLog: (taskRun, record) => reporter.logged(taskRun, record),
      });
    } catch (error) {
      await reporter.close();
      return await exit("Failed", (error as Error).message);
    }
    const outputs = await reporter.close(result);
    const stopped = options.signal?.aborted === true;
    const reason =
      result.state === "Success"
        ? `${result.taskRuns.length} task run${result.taskRuns.length === 1 ? "" : "s"} finished; all reference tasks succeeded`
        : result.state === "Cancelled"
          ? stopped
            ? `the runner was stopped (${String(options.signal?.reason ?? "signal")}) while the flow ran`
            : "cancelled while running"
          : (result.message ?? "the flow run failed");
    // A stopped runner's run failed, unless someone asked to cancel it (finish() sees Cancelling).
    const state = result.state === "Cancelled" && stopped ? "Failed" : result.state;
    return await exit(state, reason, outputs);
  } catch (error) {
    // A run that ended or that another runner has is not this runner's to fail.
    const code = (error as TernError).code;
    if (run === undefined || code === "RUN_FINISHED" || code === "RUN_RUNNING") throw error;
    return finish(backend, runId, "Failed", (error as Error).message);
  }
}

/** How long a runner's lease on its run lasts; it renews it well before. */
export const RUNNER_LEASE_MS = 60_000;
const HEARTBEAT_EVERY_MS = 15_000;

/** The lease a runner holds on its run while it runs: `runner:<host>:<pid>`. */
function runnerLease(): { owner: string; expiresAtMs: number } {
  return { owner: `runner:${hostname()}:${process.pid}`, expiresAtMs: Date.now() + RUNNER_LEASE_MS };
}

/** Moves a Submitted (or Scheduled, for `tern execute`) run to Running, retrying lost races. */
async function markRunning(
  backend: Backend,
  runId: string,
): Promise<{ kind: "running"; run: RunRecord } | { kind: "done"; result: ExecuteRunResult }> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const run = await backend.getRun(runId);
    if (run === undefined) throw new TernError("RUN_GONE", `Run ${runId} disappeared from the backend.`);
    if (run.state === "Cancelling") {
      return { kind: "done", result: await finish(backend, runId, "Cancelled", "cancelled before it started") };
    }
    if (run.state !== "Submitted" && run.state !== "Scheduled") {
      throw new TernError(
        "RUN_RUNNING",
        `Run ${runId} became ${run.state} while its bundle loaded; another runner has it.`,
      );
    }
    try {
      const running = await backend.transitionRun({
        runId,
        expectedRevision: run.revision,
        to: "Running",
        reason: `runner pid ${process.pid}`,
        lease: runnerLease(),
      });
      return { kind: "running", run: running };
    } catch (error) {
      // The agent writing the deployment details at the same moment is expected: read again.
      if (!(error instanceof RunConflictError)) throw error;
    }
  }
  throw new TernError("RUN_CONFLICT", `Run ${runId}: could not mark it Running after 10 attempts.`);
}

/** Records the final state (with the outputs), turning a run that is being cancelled into `Cancelled`. */
async function finish(
  backend: Backend,
  runId: string,
  state: ExecuteRunResult["state"],
  reason: string,
  outputs?: Readonly<Record<string, SerializedValue>>,
): Promise<ExecuteRunResult> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const run = await backend.getRun(runId);
    if (run === undefined) throw new TernError("RUN_GONE", `Run ${runId} disappeared from the backend while it ran.`);
    if (isTerminalRunState(run.state)) {
      return { runId, state: run.state as ExecuteRunResult["state"], reason: run.reason ?? "" };
    }
    const finalState = run.state === "Cancelling" && state !== "Success" ? "Cancelled" : state;
    try {
      await backend.transitionRun({
        runId,
        expectedRevision: run.revision,
        to: finalState,
        reason,
        lease: null,
        ...(outputs === undefined ? {} : { outputs }),
      });
      return { runId, state: finalState, reason };
    } catch (error) {
      if (!(error instanceof RunConflictError)) throw error;
    }
  }
  throw new TernError("RUN_CONFLICT", `Run ${runId}: could not record its final state ${state} after 10 attempts.`);
}

/** Batches task-run states and logs to the backend, and watches for cancellation. */
class Reporter {
  private readonly controller = new AbortController();
  private readonly dirty = new Map<string, TaskRun>();
  private logs: RunLogRecord[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private nextHeartbeatMs = Date.now() + HEARTBEAT_EVERY_MS;

  constructor(
    private readonly backend: Backend,
    private readonly runId: string,
    intervalMs: number,
    stop: AbortSignal | undefined,
  ) {
    this.timer = setInterval(() => void this.tick(), intervalMs);
    if (stop !== undefined) {
      if (stop.aborted) this.controller.abort(stop.reason);
      else stop.addEventListener("abort", () => this.controller.abort(stop.reason), { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  taskRunChanged(taskRun: TaskRun): void {
    this.dirty.set(taskRun.id, taskRun);
  }

  logged(taskRun: TaskRun, record: LogRecord): void {
    this.logs.push({ ...record, taskRunId: taskRun.id });
  }

  /** Stops the timer, writes what is buffered and the task runs; returns the outputs as JSON. */
  async close(result?: FlowRunResult): Promise<Readonly<Record<string, SerializedValue>> | undefined> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
    if (result === undefined) return undefined;
    const serialized = serializeRun(result);
    await this.backend.saveTaskRuns(
      this.runId,
      serialized.taskRuns.map((t) => ({ ...t, logs: [] })),
    );
    return serialized.outputs;
  }

  private async tick(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      try {
        await this.flush();
        const run = await this.backend.getRun(this.runId);
        if (run?.state === "Cancelling" && !this.controller.signal.aborted) {
          this.controller.abort(new Error("cancelled by request"));
        }
        if (run !== undefined && Date.now() >= this.nextHeartbeatMs) await this.heartbeat(run);
      } catch {
        // A failed flush is retried at the next tick; the final flush reports errors.
      }
    });
    await this.flushing;
  }

  /**
   * Renews the runner's lease on its run. Agents sweep Running runs whose lease expired: a
   * runner that died (killed, host gone) cannot report, so its lease says so for it.
   */
  private async heartbeat(run: RunRecord): Promise<void> {
    if (run.state !== "Running" && run.state !== "Cancelling") return;
    try {
      await this.backend.transitionRun({
        runId: this.runId,
        expectedRevision: run.revision,
        to: run.state,
        lease: runnerLease(),
      });
      this.nextHeartbeatMs = Date.now() + HEARTBEAT_EVERY_MS;
    } catch (error) {
      // Someone wrote the run meanwhile (a cancel, the agent's deployment details): next tick.
      if (!(error instanceof RunConflictError)) throw error;
    }
  }

  private async flush(): Promise<void> {
    if (this.dirty.size > 0) {
      const pending = [...this.dirty.values()];
      this.dirty.clear();
      try {
        // Logs go to their own table; task runs are stored without them.
        await this.backend.saveTaskRuns(
          this.runId,
          pending.map((t) => ({ ...serializeTaskRun(t), logs: [] })),
        );
      } catch (error) {
        // Keep them for the next flush, unless a newer state of the same task run came meanwhile.
        for (const t of pending) if (!this.dirty.has(t.id)) this.dirty.set(t.id, t);
        throw error;
      }
    }
    if (this.logs.length > 0) {
      const logs = this.logs;
      this.logs = [];
      try {
        await this.backend.appendLogs(this.runId, logs);
      } catch (error) {
        this.logs = [...logs, ...this.logs];
        throw error;
      }
    }
  }
}
