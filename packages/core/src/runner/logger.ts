import { AsyncLocalStorage } from "node:async_hooks";
import { formatWithOptions } from "node:util";

/** Severity of a log record. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * One line a task logged, through its logger or through `console`; or one line the runner
 * process printed through `console` outside any task (an environment's `onStart` or `onExit`,
 * the top-level code of the flow's module as the runner imports it).
 */
export interface LogRecord {
  /** Milliseconds since the epoch. */
  readonly timeMs: number;
  readonly level: LogLevel;
  readonly message: string;
  /**
   * `logger` for `ctx.logger`, `console` for `console.*` calls made inside the task, `runner` for
   * `console.*` calls the runner process made outside tasks (see {@link withRunnerOutput}).
   */
  readonly source: "logger" | "console" | "runner";
  /** Structured fields given to the logger. */
  readonly fields?: Readonly<Record<string, unknown>>;
}

/** The structured logger each task run receives in its context. */
export interface TaskLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Where the records of one task run go. */
export interface LogSink {
  write(record: LogRecord): void;
  /** Whether `console.*` output should also reach the real console. */
  readonly echoConsole: boolean;
}

/** A logger that hands every record to `sink`. */
export function createTaskLogger(sink: LogSink): TaskLogger {
  const log = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    const record: LogRecord =
      fields === undefined
        ? { timeMs: Date.now(), level, message: String(message), source: "logger" }
        : { timeMs: Date.now(), level, message: String(message), source: "logger", fields };
    sink.write(record);
  };
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
  };
}

/**
 * Console capture. While a task runs, `console.*` calls made from its async context are turned
 * into log records of that task run. The console methods are patched only while at least one
 * flow run is active, and restored when the last one ends.
 */
const taskScope = new AsyncLocalStorage<LogSink>();
const CONSOLE_METHODS = {
  log: "info",
  info: "info",
  debug: "debug",
  warn: "warn",
  error: "error",
} as const satisfies Record<string, LogLevel>;
type ConsoleMethod = keyof typeof CONSOLE_METHODS;

let activeRuns = 0;
let originals: Record<ConsoleMethod, (...args: unknown[]) => void> | undefined;

/** Runs `fn` with console output attributed to `sink`. */
export function runInTaskScope<T>(sink: LogSink, fn: () => T): T {
  return taskScope.run(sink, fn);
}

/** Starts capturing console output for one flow run; call the returned function when it ends. */
export function acquireConsoleCapture(): () => void {
  activeRuns += 1;
  if (originals === undefined) {
    const saved = {} as Record<ConsoleMethod, (...args: unknown[]) => void>;
    for (const method of Object.keys(CONSOLE_METHODS) as ConsoleMethod[]) {
      const unbound = console[method] as (...args: unknown[]) => void;
      saved[method] = unbound;
      const original = (...args: unknown[]) => unbound.apply(console, args);
      const level = CONSOLE_METHODS[method];
      console[method] = (...args: unknown[]) => {
        const sink = taskScope.getStore();
        if (sink === undefined) {
          original(...args);
          return;
        }
        sink.write({
          timeMs: Date.now(),
          level,
          message: formatWithOptions({ colors: false }, ...args),
          source: "console",
        });
        if (sink.echoConsole) original(...args);
      };
    }
    originals = saved;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    activeRuns -= 1;
    if (activeRuns === 0 && originals !== undefined) {
      for (const method of Object.keys(originals) as ConsoleMethod[]) {
        console[method] = originals[method];
      }
      originals = undefined;
    }
  };
}

/**
 * Runs `fn` with the `console.*` output of its async context (what it prints, and what anything it
 * starts prints while console output is captured) handed to `write` as `runner` records, and still printed. The runner wraps
 * what runs outside tasks in it: an environment's callbacks and the import of the flow's bundle,
 * so that `tern logs` shows their output, not only the agent's terminal. Tasks started inside
 * `fn` log as themselves (their own scope is nearer).
 */
export async function withRunnerOutput<T>(write: (record: LogRecord) => void, fn: () => Promise<T>): Promise<T> {
  const release = acquireConsoleCapture();
  const sink: LogSink = { echoConsole: true, write: (record) => write({ ...record, source: "runner" }) };
  try {
    return await runInTaskScope(sink, fn);
  } finally {
    release();
  }
}

/** Formats a logger record for a terminal: `HH:MM:SS.mmm LEVEL [slug] message {fields}`. */
export function formatLogLine(slug: string, record: Omit<LogRecord, "source">): string {
  const time = new Date(record.timeMs).toISOString().slice(11, 23);
  const fields = record.fields === undefined ? "" : ` ${JSON.stringify(record.fields)}`;
  return `${time} ${record.level.toUpperCase().padEnd(5)} [${slug}] ${record.message}${fields}`;
}
