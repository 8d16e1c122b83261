/** One executable task run (a plain node's run or one mapped child) and the context its task sees. */
import type { GraphNode } from "../flow/graph.js";
import type { TaskContext } from "../flow/task-types.js";
import { createTaskLogger, type LogRecord, type LogSink, type TaskLogger } from "./logger.js";
import type { TaskRunRecord } from "./task-run.js";

/** What a job needs from the run it belongs to. */
export interface JobHost {
  readonly runId: string;
  readonly echo: boolean;
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Records a log line of a task run. */
  log(record: TaskRunRecord, line: LogRecord): void;
}

/** One executable task run: its attempts, timer and abort controller while it is in flight. */
export class Job implements LogSink {
  attempt = 0;
  timer: NodeJS.Timeout | undefined;
  controller: AbortController | undefined;
  private logger: TaskLogger | undefined;

  constructor(
    readonly host: JobHost,
    readonly node: GraphNode,
    readonly record: TaskRunRecord,
    readonly args: unknown[],
  ) {}

  get echoConsole(): boolean {
    return this.host.echo;
  }

  write(record: LogRecord): void {
    this.host.log(this.record, record);
  }

  taskLogger(): TaskLogger {
    this.logger ??= createTaskLogger(this);
    return this.logger;
  }
}

/** The `ctx` a task's function gets as its last argument, for one attempt. */
export class Context implements TaskContext {
  constructor(
    private readonly job: Job,
    readonly signal: AbortSignal,
    readonly attempt: number,
  ) {}

  get logger(): TaskLogger {
    return this.job.taskLogger();
  }
  get parameters(): Readonly<Record<string, unknown>> {
    return this.job.host.parameters;
  }
  get runId(): string {
    return this.job.host.runId;
  }
  get taskRunId(): string {
    return this.job.record.id;
  }
  get mapIndex(): number | undefined {
    return this.job.record.mapIndex;
  }
}
