import type { Backend, RunLogRecord, RunRecord } from "../backend/types.js";
import { isTerminalRunState } from "../backend/types.js";
import type { Environment, EnvironmentExitContext, EnvironmentHookContext } from "../environment/environment.js";
import { isTernError, TernError } from "../errors.js";
import type { FlowRunResult } from "../flow/flow.js";
import type { TaskRun } from "../runner/engine.js";
import { type Executor, type ExecutorConfig, executorFromJSON } from "../runner/executor.js";
import { LogBudget } from "../runner/log-budget.js";
import { type LogRecord, withRunnerOutput } from "../runner/logger.js";
import { type SerializedValue, serializeRun, serializeTaskRun } from "../runner/serialize.js";
import { resolveRun } from "./deploy.js";
import { DEFAULT_LEASE_MS, isRunnerOwner, leaseMsFromEnv, runnerOwner } from "./lease.js";
import { type LeaseKeeper, type LeaseKeeperEvent, startLeaseKeeper } from "./lease-keeper.js";
import { updateRun } from "./update-run.js";

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
  /**
   * The module a worker thread runs to keep the runner's lease (one that calls
   * `runLeaseKeeper`; the tern CLI passes its own), so that tasks blocking this event loop do not
   * let the lease expire. Without it the lease is renewed from this event loop.
   */
  readonly leaseKeeper?: URL;
  /** How long the lease lasts. @default `TERN_LEASE_SECONDS`, else 60 s */
  readonly leaseMs?: number;
  /** After a cancel, how long the flow may take to stop before the keeper kills the process. @default the lease length, at most 30 s */
  readonly stopGraceMs?: number;
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
  const owner = runnerOwner();
  const leaseMs = options.leaseMs ?? leaseMsFromEnv();
  let run: RunRecord | undefined;
  let keeper: LeaseKeeper | undefined;
  let reporter: Reporter | undefined;
  /** Why the run is not this runner's any more (fenced: nothing more is written). */
  let lost: string | undefined;
  try {
    const onKeeperEvent = (event: LeaseKeeperEvent) => {
      if (event.type === "ready") return;
      if (event.type === "cancel") reporter?.abort(new Error("cancelled by request"));
      else {
        lost = event.reason;
        reporter?.fence(new Error(`the run is not this runner's any more: ${event.reason}`));
        log(`stopping: ${event.reason}`);
      }
    };
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
    if (run.state === "Cancelling") {
      return await finish(backend, runId, "Cancelled", "cancelled before it started");
    }
    // Captured output kept per run (TERN_LOG_LIMIT_BYTES); a bad value fails the run with its message.
    const budget = new LogBudget<RunLogRecord>();
    /** What the runner printed outside tasks before the reporter existed (the bundle's import). */
    const early: RunLogRecord[] = [];
    const runnerOutput = (record: LogRecord) => {
      const kept = { ...record, taskRunId: runId };
      if (reporter === undefined) early.push(...budget.admit(kept));
      else reporter.record(kept);
    };
    const { flow } = await withRunnerOutput(runnerOutput, () =>
      resolved.storage.load(resolved.flowVersion.location, {
        expectedHash: resolved.flowVersion.manifestHash,
        label: resolved.label,
      }),
    );
    const started = await markRunning(backend, runId, owner, leaseMs);
    if (started.kind !== "running") return started.result;
    const active = new Reporter(backend, runId, options.flushIntervalMs ?? 500, options.signal, budget, owner, early);
    reporter = active;
    // Started once the lease is taken, before any task can block this event loop, and not waited
    // for: the worker thread boots on its own and renews from then on, blocked loop or not (the
    // fresh lease lasts a lease length; the first renewal is due after a quarter of it). A run
    // that ends while the thread still boots stops it there, sparing the rest of its start-up,
    // which costs about as much CPU as the run's own process does.
    keeper = startLeaseKeeper(
      { backendUrl: backend.url, runId, owner, leaseMs, stopGraceMs: options.stopGraceMs ?? Math.min(30_000, leaseMs) },
      {
        backend,
        onEvent: onKeeperEvent,
        log,
        ...(options.leaseKeeper === undefined ? {} : { entry: options.leaseKeeper }),
      },
    );
    keeper.begin();
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
          await withRunnerOutput(runnerOutput, async () => environment.onExit?.(exitContext));
        } catch (error) {
          if (finalState === "Success") finalState = "Failed";
          finalReason = `${finalReason}; onExit failed: ${(error as Error).message}`;
        }
      }
      await reporter?.close();
      await keeper?.stop();
      if (lost !== undefined) return { runId, state: "Failed", reason: `stopped: ${lost}` };
      return finish(backend, runId, finalState, finalReason, outputs, owner);
    };

    if (environment?.onStart !== undefined) {
      try {
        await withRunnerOutput(runnerOutput, async () => environment.onStart?.(hookContext));
      } catch (error) {
        return await exit("Failed", `onStart failed: ${(error as Error).message}`);
      }
    }

    const executorConfig = resolved.manifest.environment.options.executor as ExecutorConfig | undefined;
    const executor: Executor | undefined = executorConfig === undefined ? undefined : executorFromJSON(executorConfig);
    let result: FlowRunResult;
    try {
      result = await flow.run({
        runId,
        parameters: run.parameters,
        ...(executor === undefined ? {} : { executor }),
        signal: active.signal,
        // Task output also goes to this process's stdout/stderr: the agent's log locally,
        // the task's log stream on Fargate, and the last words of a runner that dies.
        echo: true,
        onTaskRunState: (taskRun) => active.taskRunChanged(taskRun),
        onLog: (taskRun, record) => active.logged(taskRun, record),
      });
    } catch (error) {
      return await exit("Failed", (error as Error).message);
    }
    const outputs = await active.finish(result);
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
    await reporter?.close().catch(() => undefined);
    await keeper?.stop();
    // A run that ended or that another runner has is not this runner's to fail.
    if (run === undefined || isTernError(error, "RUN_FINISHED") || isTernError(error, "RUN_RUNNING")) throw error;
    if (lost !== undefined) return { runId, state: "Failed", reason: `stopped: ${lost}` };
    return finish(backend, runId, "Failed", (error as Error).message, undefined, owner);
  }
}

/** How long a runner's lease on its run lasts by default (`TERN_LEASE_SECONDS` changes it). */
export const RUNNER_LEASE_MS = DEFAULT_LEASE_MS;

/** Moves a Submitted (or Scheduled, for `tern execute`) run to Running, retrying lost races. */
async function markRunning(
  backend: Backend,
  runId: string,
  owner: string,
  leaseMs: number,
): Promise<{ kind: "running"; run: RunRecord } | { kind: "done"; result: ExecuteRunResult }> {
  type Started = { kind: "running"; run: RunRecord } | { kind: "done"; result: ExecuteRunResult };
  // A conflict is expected (the agent writing the deployment details at the same moment): read again.
  return updateRun<Started>(
    backend,
    runId,
    async (run) => {
      if (run === undefined) throw new TernError("RUN_GONE", `Run ${runId} disappeared from the backend.`);
      if (run.state === "Cancelling") {
        return {
          done: { kind: "done", result: await finish(backend, runId, "Cancelled", "cancelled before it started") },
        };
      }
      if (run.state !== "Submitted" && run.state !== "Scheduled") {
        throw new TernError(
          "RUN_RUNNING",
          `Run ${runId} became ${run.state} while its bundle loaded; another runner has it.`,
        );
      }
      return {
        write: {
          to: "Running",
          reason: `runner pid ${process.pid}`,
          lease: { owner, expiresAtMs: Date.now() + leaseMs },
        },
        result: (running) => ({ kind: "running", run: running }),
      };
    },
    {
      exhausted: () => {
        // Lost to other writers every time, as a RunConflictError is: transient, like it.
        throw new TernError("RUN_CONFLICT", `Run ${runId}: could not mark it Running after 10 attempts.`, {
          retryable: true,
        });
      },
    },
  );
}

/**
 * Records the final state (with the outputs), turning a run that is being cancelled into
 * `Cancelled`. With `owner`, only while that runner still holds the run's lease: a run another
 * runner took over is left to it (fencing).
 */
async function finish(
  backend: Backend,
  runId: string,
  state: ExecuteRunResult["state"],
  reason: string,
  outputs?: Readonly<Record<string, SerializedValue>>,
  owner?: string,
): Promise<ExecuteRunResult> {
  return updateRun<ExecuteRunResult>(
    backend,
    runId,
    (run) => {
      if (run === undefined) {
        throw new TernError("RUN_GONE", `Run ${runId} disappeared from the backend while it ran.`);
      }
      if (isTerminalRunState(run.state)) {
        return { done: { runId, state: run.state as ExecuteRunResult["state"], reason: run.reason ?? "" } };
      }
      const holder = run.lease?.owner;
      if (owner !== undefined && isRunnerOwner(holder) && holder !== owner) {
        return { done: { runId, state: "Failed", reason: `stopped: the run is held by ${holder} now` } };
      }
      const finalState = run.state === "Cancelling" && state !== "Success" ? "Cancelled" : state;
      return {
        write: { to: finalState, reason, lease: null, ...(outputs === undefined ? {} : { outputs }) },
        result: () => ({ runId, state: finalState, reason }),
      };
    },
    {
      exhausted: () => {
        throw new TernError(
          "RUN_CONFLICT",
          `Run ${runId}: could not record its final state ${state} after 10 attempts.`,
          { retryable: true },
        );
      },
    },
  );
}

/** Batches task-run states and logs to the backend, and watches for cancellation. */
class Reporter {
  private readonly controller = new AbortController();
  private readonly dirty = new Map<string, TaskRun>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  /** Set once the run is not this runner's: nothing more is written. */
  private fenced = false;
  private closed = false;

  constructor(
    private readonly backend: Backend,
    private readonly runId: string,
    intervalMs: number,
    stop: AbortSignal | undefined,
    private readonly budget: LogBudget<RunLogRecord>,
    /** The runner's lease owner: a flush happens only while it holds the run. */
    private readonly owner: string,
    /** Records admitted before the reporter existed, written with the first flush. */
    private logs: RunLogRecord[] = [],
  ) {
    this.timer = setInterval(() => void this.tick(), intervalMs);
    // The flow keeps the process alive while it runs; this timer alone must not.
    this.timer.unref();
    if (stop !== undefined) {
      if (stop.aborted) this.controller.abort(stop.reason);
      else stop.addEventListener("abort", () => this.controller.abort(stop.reason), { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Stops the flow (its tasks get the abort signal). */
  abort(reason: Error): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Stops the flow and writes nothing more: the run is someone else's now. */
  fence(reason: Error): void {
    this.fenced = true;
    this.dirty.clear();
    this.logs = [];
    this.abort(reason);
  }

  taskRunChanged(taskRun: TaskRun): void {
    this.dirty.set(taskRun.id, taskRun);
  }

  logged(taskRun: TaskRun, record: LogRecord): void {
    this.record({ ...record, taskRunId: taskRun.id });
  }

  /** Keeps a record (a task's, or the runner's own output) within the run's log budget. */
  record(record: RunLogRecord): void {
    if (this.fenced) return;
    for (const kept of this.budget.admit(record)) this.logs.push(kept);
  }

  /**
   * Writes what is buffered and the flow's final task runs; returns the outputs as JSON. Logs
   * still come after it (`onExit`'s output) until {@link close}.
   */
  async finish(result: FlowRunResult): Promise<Readonly<Record<string, SerializedValue>> | undefined> {
    await this.flushInTurn();
    if (this.fenced) return undefined;
    const serialized = serializeRun(result);
    await this.backend.saveTaskRuns(
      this.runId,
      serialized.taskRuns.map((t) => ({ ...t, logs: [] })),
    );
    return serialized.outputs;
  }

  /** Stops the timer and writes what is buffered, with the note of what the log limit dropped. Closing again does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.flushing;
    const dropped = this.budget.summary();
    if (dropped !== undefined && !this.fenced) this.logs.push(dropped);
    await this.flush();
  }

  /** A flush after the ones under way (a tick's), so that records are appended in order; its error is thrown. */
  private async flushInTurn(): Promise<void> {
    const done = this.flushing.then(() => this.flush());
    this.flushing = done.catch(() => undefined);
    await done;
  }

  private async tick(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      try {
        // The run is read before anything is written: a runner that lost its run (paused past its
        // lease, say) writes nothing more, even before the lease keeper notices. The keeper
        // watches for a cancel too; this notices it sooner while the loop is free.
        const run = await this.backend.getRun(this.runId);
        const holder = run?.lease?.owner;
        if (run === undefined || isTerminalRunState(run.state) || (isRunnerOwner(holder) && holder !== this.owner)) {
          this.fence(new Error(`the run is not this runner's any more (${run?.state ?? "gone"})`));
          return;
        }
        if (run.state === "Cancelling") this.abort(new Error("cancelled by request"));
        await this.flush();
      } catch {
        // A failed flush is retried at the next tick; the final flush reports errors.
      }
    });
    await this.flushing;
  }

  private async flush(): Promise<void> {
    if (this.fenced) return;
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
