import { randomUUID } from "node:crypto";
import { isTernError, TaskTimeoutError } from "../errors.js";
import type { ArgSpec, FlowGraph, GraphNode } from "../flow/graph.js";
import type { Executor } from "./executor.js";
import { LocalExecutor } from "./executor.js";
import { Context, Job } from "./job.js";
import { acquireConsoleCapture, formatLogLine, type LogRecord, runInTaskScope } from "./logger.js";
import { failedMessage, retryDelayMs, retryingMessage } from "./retry.js";
import type { GraphRunResult, RunOptions } from "./run-options.js";
import { failureSummary, reasonText, resolveParameters } from "./run-summary.js";
import { type FlowRunState, isFinished, isSuccessful, type TaskRunState } from "./states.js";
import { NO_LOGS, recordRetriedAttempt, TaskRunRecord, toTaskRunError } from "./task-run.js";
import { upstreamBlocker } from "./trigger-rules.js";

export type { GraphRunResult, RunOptions } from "./run-options.js";
export type { AttemptError, TaskRun, TaskRunError } from "./task-run.js";

/** A mapped node's bookkeeping while its children run. */
interface MapState {
  readonly children: TaskRunRecord[];
  remaining: number;
}

/**
 * Runs a flow graph once. Ready nodes are activated in FIFO order (skip and trigger checks,
 * argument resolution, fan-out), their jobs wait in a FIFO queue, and at most
 * `maxConcurrency` jobs are in flight. Everything is iterative, so long chains of tasks that
 * finish synchronously do not grow the stack.
 */
export class GraphRunner {
  readonly runId: string;
  readonly echo: boolean;
  readonly parameters: Readonly<Record<string, unknown>>;
  private readonly nodes: readonly GraphNode[];
  private readonly records: TaskRunRecord[];
  private readonly results: unknown[];
  private readonly pendingUpstream: Int32Array;
  private readonly mapStates = new Map<number, MapState>();
  private readonly maxConcurrency: number;
  private readonly runController = new AbortController();
  private readonly readyNodes: number[] = [];
  private readyHead = 0;
  private readonly jobs: Job[] = [];
  private jobHead = 0;
  private readonly inFlight = new Set<Job>();
  private finishedNodes = 0;
  private done = false;
  private cancelled = false;
  private cancelReason: unknown;
  private pumping = false;
  private startedAtMs = 0;
  private resolve!: (result: GraphRunResult) => void;
  private releaseConsole: (() => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = () => this.cancel(this.signal?.reason);

  constructor(
    private readonly graph: FlowGraph,
    private readonly referenceNodes: readonly number[],
    defaultExecutor: Executor | undefined,
    private readonly options: RunOptions,
  ) {
    this.runId = options.runId ?? randomUUID();
    this.echo = options.echo ?? true;
    this.parameters = Object.freeze(resolveParameters(graph, options.parameters ?? {}));
    this.maxConcurrency = (options.executor ?? defaultExecutor ?? new LocalExecutor()).maxConcurrency;
    this.signal = options.signal;
    this.nodes = graph.nodes;
    const n = this.nodes.length;
    this.records = new Array(n);
    this.results = new Array(n);
    this.pendingUpstream = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const node = this.nodes[i] as GraphNode;
      this.records[i] = new TaskRunRecord(`${this.runId}/${node.slug}`, node.slug, node.task.taskName, undefined);
      this.pendingUpstream[i] = node.upstream.length;
      if (node.upstream.length === 0) this.readyNodes.push(i);
    }
  }

  run(): Promise<GraphRunResult> {
    return new Promise<GraphRunResult>((resolve) => {
      this.resolve = resolve;
      this.startedAtMs = Date.now();
      if (this.signal?.aborted) {
        this.cancel(this.signal.reason);
        return;
      }
      this.signal?.addEventListener("abort", this.onAbort, { once: true });
      this.releaseConsole = acquireConsoleCapture();
      this.pump();
    });
  }

  /** Records a log line of a task run. */
  log(record: TaskRunRecord, line: LogRecord): void {
    if (record.logs === NO_LOGS) record.logs = [];
    (record.logs as LogRecord[]).push(line);
    if (this.echo && line.source === "logger") process.stderr.write(`${formatLogLine(record.slug, line)}\n`);
    this.options.onLog?.(record, line);
  }

  private pump(): void {
    if (this.pumping || this.done) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.readyHead < this.readyNodes.length) {
          this.activate(this.readyNodes[this.readyHead++] as number);
          continue;
        }
        if (this.jobHead < this.jobs.length && this.inFlight.size < this.maxConcurrency) {
          const job = this.jobs[this.jobHead] as Job;
          this.jobs[this.jobHead++] = undefined as unknown as Job;
          this.startAttempt(job);
          continue;
        }
        break;
      }
      if (this.readyHead > 1024 && this.readyHead * 2 > this.readyNodes.length) {
        this.readyNodes.splice(0, this.readyHead);
        this.readyHead = 0;
      }
      if (this.jobHead > 1024 && this.jobHead * 2 > this.jobs.length) {
        this.jobs.splice(0, this.jobHead);
        this.jobHead = 0;
      }
    } finally {
      this.pumping = false;
    }
    if (!this.done && this.finishedNodes === this.nodes.length) this.finish();
  }

  /** A node whose upstream all finished: skip, trigger-fail, fan out, or queue its job. */
  private activate(index: number): void {
    const node = this.nodes[index] as GraphNode;
    const record = this.records[index] as TaskRunRecord;
    const upstream = node.upstream.map((u) => this.records[u] as TaskRunRecord);
    const blocked = upstreamBlocker(node.task.options, upstream);
    if (blocked !== undefined) {
      this.endNode(index, blocked.state, blocked.message);
      return;
    }
    if (!node.mapped) {
      this.jobs.push(new Job(this, node, record, this.resolveArgs(node.args, -1)));
      return;
    }
    const lists: unknown[][] = [];
    for (const [i, spec] of node.args.entries()) {
      if (!spec.mapped) continue;
      const list = this.argValue(spec);
      if (!Array.isArray(list)) {
        this.failNode(index, `argument ${i + 1} of ${node.slug}.map(...) must be a list, got ${typeName(list)}`);
        return;
      }
      lists.push(list);
    }
    const length = (lists[0] as unknown[]).length;
    if (lists.some((l) => l.length !== length)) {
      this.failNode(
        index,
        `the lists given to ${node.slug}.map(...) differ in length (${lists.map((l) => l.length).join(", ")}); map needs lists of equal length`,
      );
      return;
    }
    record.state = "Running";
    record.startedAtMs = Date.now();
    this.notify(record);
    if (length === 0) {
      this.endNode(index, "Success", undefined, []);
      return;
    }
    const children: TaskRunRecord[] = [];
    this.mapStates.set(index, { children, remaining: length });
    for (let m = 0; m < length; m++) {
      const child = new TaskRunRecord(`${record.id}[${m}]`, node.slug, node.task.taskName, m);
      children.push(child);
      this.jobs.push(new Job(this, node, child, this.resolveArgs(node.args, m)));
    }
  }

  private resolveArgs(specs: readonly ArgSpec[], mapIndex: number): unknown[] {
    const args = new Array(specs.length);
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i] as ArgSpec;
      const value = this.argValue(spec);
      args[i] = mapIndex >= 0 && spec.mapped ? (value as unknown[])[mapIndex] : value;
    }
    return args;
  }

  private argValue(spec: ArgSpec): unknown {
    if (spec.kind === "task") return this.results[spec.node];
    if (spec.kind === "parameter") return this.parameters[spec.name];
    return spec.value;
  }

  private startAttempt(job: Job): void {
    const record = job.record;
    const attempt = ++job.attempt;
    record.attempts = attempt;
    record.state = "Running";
    record.startedAtMs ??= Date.now();
    this.inFlight.add(job);
    this.notify(record);
    const timeoutMs = job.node.task.options.timeoutMs;
    let signal = this.runController.signal;
    if (timeoutMs !== undefined) {
      const controller = new AbortController();
      job.controller = controller;
      signal = controller.signal;
      job.timer = setTimeout(() => {
        if (job.attempt !== attempt || this.done) return;
        const error = new TaskTimeoutError(
          record.mapIndex === undefined ? record.slug : `${record.slug}[${record.mapIndex}]`,
          timeoutMs,
        );
        controller.abort(error);
        this.attemptFailed(job, error, true);
        this.pump();
      }, timeoutMs);
    }
    let returned: unknown;
    try {
      const ctx = new Context(job, signal, attempt);
      returned = runInTaskScope(job, () => job.node.task.fn(...job.args, ctx));
    } catch (error) {
      this.attemptFailed(job, error, false);
      return;
    }
    if (isThenable(returned)) {
      returned.then(
        (value) => {
          if (job.attempt !== attempt || this.done || record.state !== "Running") return;
          this.attemptSucceeded(job, value);
          this.pump();
        },
        (error: unknown) => {
          if (job.attempt !== attempt || this.done || record.state !== "Running") return;
          this.attemptFailed(job, error, false);
          this.pump();
        },
      );
    } else {
      this.attemptSucceeded(job, returned);
    }
  }

  private attemptSucceeded(job: Job, value: unknown): void {
    this.clearTimer(job);
    this.inFlight.delete(job);
    this.endJob(job, "Success", undefined, value);
  }

  private attemptFailed(job: Job, error: unknown, timedOut: boolean): void {
    this.clearTimer(job);
    const record = job.record;
    record.error = toTaskRunError(error);
    // A `skip()` from the task, made by any copy of core.
    if (isTernError(error, "SKIP")) {
      this.inFlight.delete(job);
      record.error = undefined;
      this.endJob(job, "Skipped", error.message);
      return;
    }
    const delayMs = retryDelayMs(job.node.task.options, job.attempt);
    if (delayMs !== undefined) {
      // The job keeps its executor slot while it waits: a retrying task is still in flight.
      record.state = "Retrying";
      recordRetriedAttempt(record, job.attempt, record.error, timedOut);
      record.message = retryingMessage(job.attempt, timedOut, record.error.message);
      this.notify(record);
      job.timer = setTimeout(() => {
        job.timer = undefined;
        if (this.done) return;
        this.inFlight.delete(job);
        this.startAttempt(job);
        this.pump();
      }, delayMs);
      return;
    }
    this.inFlight.delete(job);
    this.endJob(job, timedOut ? "TimedOut" : "Failed", failedMessage(job.attempt, record.error.message));
  }

  private clearTimer(job: Job): void {
    if (job.timer !== undefined) {
      clearTimeout(job.timer);
      job.timer = undefined;
    }
  }

  /** Ends a job's task run; for a mapped child, ends the parent once all children are done. */
  private endJob(job: Job, state: TaskRunState, message: string | undefined, result?: unknown): void {
    const record = job.record;
    const index = job.node.index;
    if (record.mapIndex === undefined) {
      this.endNode(index, state, message, result);
      return;
    }
    this.setFinal(record, state, message, result);
    const map = this.mapStates.get(index) as MapState;
    map.remaining -= 1;
    if (map.remaining > 0) return;
    const failed = map.children.filter((c) => !isSuccessful(c.state));
    if (failed.length === 0) {
      this.endNode(
        index,
        "Success",
        undefined,
        map.children.map((c) => c.result),
      );
    } else {
      const first = failed[0] as TaskRunRecord;
      this.endNode(
        index,
        "Failed",
        `${failed.length} of ${map.children.length} mapped task runs did not succeed; first: [${first.mapIndex}] ${first.state}: ${first.message}`,
        map.children.map((c) => c.result),
      );
    }
  }

  private failNode(index: number, message: string): void {
    const record = this.records[index] as TaskRunRecord;
    record.error = { name: "MapError", message };
    this.endNode(index, "Failed", message);
  }

  private endNode(index: number, state: TaskRunState, message: string | undefined, result?: unknown): void {
    const record = this.records[index] as TaskRunRecord;
    this.setFinal(record, state, message, result);
    this.results[index] = record.result;
    this.finishedNodes += 1;
    const pending = this.pendingUpstream;
    for (const d of (this.nodes[index] as GraphNode).downstream) {
      pending[d] = (pending[d] as number) - 1;
      if (pending[d] === 0) this.readyNodes.push(d);
    }
  }

  private setFinal(record: TaskRunRecord, state: TaskRunState, message: string | undefined, result: unknown): void {
    record.state = state;
    record.message = message;
    if (state === "Success") record.result = result;
    record.endedAtMs = Date.now();
    this.notify(record);
  }

  private notify(record: TaskRunRecord): void {
    const listener = this.options.onTaskRunState;
    if (listener === undefined) return;
    try {
      listener(record);
    } catch (error) {
      process.emitWarning(`onTaskRunState threw for ${record.id}: ${String(error)}`);
    }
  }

  private cancel(reason: unknown): void {
    if (this.done) return;
    this.cancelled = true;
    this.cancelReason = reason;
    this.runController.abort(reason);
    for (const job of this.inFlight) {
      this.clearTimer(job);
      job.controller?.abort(reason);
    }
    const message = `the flow run was cancelled${reasonText(reason)}`;
    for (const record of this.allRecords()) {
      if (!isFinished(record.state)) this.setFinal(record, "Cancelled", message, undefined);
    }
    this.finish();
  }

  private *allRecords(): Generator<TaskRunRecord> {
    for (let i = 0; i < this.records.length; i++) {
      yield this.records[i] as TaskRunRecord;
      const map = this.mapStates.get(i);
      if (map !== undefined) yield* map.children;
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.releaseConsole?.();
    const taskRuns = [...this.allRecords()];
    let state: FlowRunState;
    let message: string | undefined;
    if (this.cancelled) {
      state = "Cancelled";
      message = `Cancelled${reasonText(this.cancelReason)}`;
    } else {
      const ok = this.referenceNodes.every((i) => isSuccessful((this.records[i] as TaskRunRecord).state));
      state = ok ? "Success" : "Failed";
      if (!ok) message = failureSummary(taskRuns);
    }
    this.resolve({
      runId: this.runId,
      flow: this.graph.flowName,
      state,
      ...(message === undefined ? {} : { message }),
      parameters: this.parameters,
      taskRuns,
      startedAtMs: this.startedAtMs,
      endedAtMs: Date.now(),
      nodeResults: this.results,
      nodeStates: this.records.map((r) => r.state),
    });
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value;
}
