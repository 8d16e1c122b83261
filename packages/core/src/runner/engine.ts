import { randomUUID } from "node:crypto";
import { ParameterError, TaskTimeoutError } from "../errors.js";
import type { ArgSpec, FlowGraph, GraphNode } from "../flow/graph.js";
import type { TaskContext, TriggerName } from "../flow/task-types.js";
import type { Executor } from "./executor.js";
import { LocalExecutor } from "./executor.js";
import {
  acquireConsoleCapture,
  createTaskLogger,
  formatLogLine,
  type LogRecord,
  type LogSink,
  runInTaskScope,
  type TaskLogger,
} from "./logger.js";
import { type FlowRunState, isFailed, isFinished, isSuccessful, type TaskRunState } from "./states.js";

/** An error a task run ended with. */
export interface TaskRunError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

/** One run of one task use (or of one mapped child). */
export interface TaskRun {
  /** `<runId>/<slug>`, plus `[<mapIndex>]` for a mapped child. */
  readonly id: string;
  /** The task use's slug, unique in the flow. */
  readonly slug: string;
  /** The task's name. */
  readonly task: string;
  readonly state: TaskRunState;
  /** Attempts made. A mapped parent makes none itself: see its children. */
  readonly attempts: number;
  /** The value the task returned, when it succeeded; a mapped parent holds its children's. */
  readonly result?: unknown;
  /** The error of the last failed attempt. */
  readonly error?: TaskRunError;
  /** Why the task run is in its state, for states other than `Success`. */
  readonly message?: string;
  /** Position of a mapped child in its parent's list. */
  readonly mapIndex?: number;
  /** What the task logged, `console.*` included. */
  readonly logs: readonly LogRecord[];
  readonly startedAtMs?: number;
  readonly endedAtMs?: number;
}

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

const NO_LOGS: readonly LogRecord[] = Object.freeze([]);

class TaskRunRecord implements TaskRun {
  state: TaskRunState = "Pending";
  attempts = 0;
  result: unknown = undefined;
  error?: TaskRunError;
  message?: string;
  logs: readonly LogRecord[] = NO_LOGS;
  startedAtMs?: number;
  endedAtMs?: number;

  constructor(
    readonly id: string,
    readonly slug: string,
    readonly task: string,
    readonly mapIndex: number | undefined,
  ) {}
}

/** A mapped node's bookkeeping while its children run. */
interface MapState {
  readonly children: TaskRunRecord[];
  remaining: number;
}

/** One executable task run: a plain node's run or one mapped child. */
class Job implements LogSink {
  attempt = 0;
  timer: NodeJS.Timeout | undefined;
  controller: AbortController | undefined;
  private logger: TaskLogger | undefined;

  constructor(
    readonly runner: GraphRunner,
    readonly node: GraphNode,
    readonly record: TaskRunRecord,
    readonly args: unknown[],
  ) {}

  get echoConsole(): boolean {
    return this.runner.echo;
  }

  write(record: LogRecord): void {
    this.runner.log(this.record, record);
  }

  taskLogger(): TaskLogger {
    this.logger ??= createTaskLogger(this);
    return this.logger;
  }
}

class Context implements TaskContext {
  constructor(
    private readonly job: Job,
    readonly signal: AbortSignal,
    readonly attempt: number,
  ) {}

  get logger(): TaskLogger {
    return this.job.taskLogger();
  }
  get parameters(): Readonly<Record<string, unknown>> {
    return this.job.runner.parameters;
  }
  get runId(): string {
    return this.job.runner.runId;
  }
  get taskRunId(): string {
    return this.job.record.id;
  }
  get mapIndex(): number | undefined {
    return this.job.record.mapIndex;
  }
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
    const { skipOnUpstreamSkip, trigger } = node.task.options;
    if (skipOnUpstreamSkip) {
      const skipped = node.upstream.find((u) => this.records[u]?.state === "Skipped");
      if (skipped !== undefined) {
        this.endNode(index, "Skipped", `upstream "${this.nodes[skipped]?.slug}" was skipped`);
        return;
      }
    }
    const blocker = node.upstream.length === 0 ? undefined : this.checkTrigger(trigger, node.upstream);
    if (blocker !== undefined) {
      this.endNode(index, "TriggerFailed", blocker);
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

  private checkTrigger(trigger: TriggerName, upstream: readonly number[]): string | undefined {
    const states = upstream.map((u) => (this.records[u] as TaskRunRecord).state);
    let ok: boolean;
    switch (trigger) {
      case "allSuccessful":
        ok = states.every(isSuccessful);
        break;
      case "allFinished":
        ok = true;
        break;
      case "anySuccessful":
        ok = states.some(isSuccessful);
        break;
      case "anyFailed":
        ok = states.some(isFailed);
        break;
      case "allFailed":
        ok = states.every(isFailed);
        break;
    }
    if (ok) return undefined;
    const detail = upstream.map((u) => `"${this.nodes[u]?.slug}" is ${this.records[u]?.state}`).join(", ");
    return `trigger ${trigger} not met: upstream ${detail}`;
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
    if (isSkipSignal(error)) {
      this.inFlight.delete(job);
      record.error = undefined;
      this.endJob(job, "Skipped", (error as Error).message);
      return;
    }
    const { maxRetries, retryDelayMs, retryBackoff, maxRetryDelayMs } = job.node.task.options;
    if (job.attempt <= maxRetries) {
      // The job keeps its executor slot while it waits: a retrying task is still in flight.
      record.state = "Retrying";
      record.message = `attempt ${job.attempt} ${timedOut ? "timed out" : "failed"}: ${record.error.message}`;
      this.notify(record);
      const factor = retryBackoff === "exponential" ? 2 ** (job.attempt - 1) : 1;
      const delayMs = Math.min(retryDelayMs * factor, maxRetryDelayMs);
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
    const attempts = job.attempt === 1 ? "" : ` (after ${job.attempt} attempts)`;
    this.endJob(job, timedOut ? "TimedOut" : "Failed", `${record.error.message}${attempts}`);
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

function resolveParameters(graph: FlowGraph, given: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const declared = [...graph.parameters.keys()];
  const unknown = Object.keys(given).filter((name) => !graph.parameters.has(name));
  const missing = [...graph.parameters.values()]
    .filter((p) => p.required && given[p.name] === undefined && !p.hasDefault)
    .map((p) => p.name);
  if (unknown.length > 0 || missing.length > 0) throw new ParameterError(graph.flowName, unknown, missing, declared);
  const values: Record<string, unknown> = {};
  for (const p of graph.parameters.values()) {
    values[p.name] = given[p.name] !== undefined ? given[p.name] : p.default;
  }
  return values;
}

function failureSummary(taskRuns: readonly TaskRun[]): string {
  const failed = taskRuns.filter((t) => isFailed(t.state));
  if (failed.length === 0) return "The reference tasks did not succeed.";
  const shown = failed.slice(0, 10).map((t) => {
    const name = t.mapIndex === undefined ? t.slug : `${t.slug}[${t.mapIndex}]`;
    return `${name} (${t.state}${t.message ? `: ${t.message}` : ""})`;
  });
  const more = failed.length > 10 ? `; and ${failed.length - 10} more` : "";
  return `${failed.length} task run${failed.length > 1 ? "s" : ""} did not succeed: ${shown.join("; ")}${more}`;
}

function toTaskRunError(error: unknown): TaskRunError {
  if (error instanceof Error) {
    return error.stack === undefined
      ? { name: error.name, message: error.message }
      : { name: error.name, message: error.message, stack: error.stack };
  }
  return { name: "NonError", message: `a non-Error value was thrown: ${safeString(error)}` };
}

function isSkipSignal(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === "SKIP" && error.name === "SkipSignal";
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

function reasonText(reason: unknown): string {
  if (reason === undefined) return "";
  if (reason instanceof Error) return reason.name === "AbortError" ? "" : `: ${reason.message}`;
  return `: ${safeString(reason)}`;
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
