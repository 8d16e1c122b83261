import { TernError } from "../errors.js";
import type { LogRecord } from "./logger.js";

/** Bytes of captured log output kept per run when `TERN_LOG_LIMIT_BYTES` is not set: 10 MiB. */
export const DEFAULT_LOG_LIMIT_BYTES = 10 * 1024 * 1024;

/** The environment variable that sets the per-run log limit, in bytes. */
export const LOG_LIMIT_ENV = "TERN_LOG_LIMIT_BYTES";

/**
 * The per-run log limit in force: `TERN_LOG_LIMIT_BYTES` (a whole number of bytes, at least 1),
 * else {@link DEFAULT_LOG_LIMIT_BYTES}. Throws a {@link TernError} (`LOG_LIMIT`) naming the value
 * when it is not one.
 */
export function logLimitBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[LOG_LIMIT_ENV];
  if (raw === undefined || raw.trim() === "") return DEFAULT_LOG_LIMIT_BYTES;
  const text = raw.trim();
  const bytes = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new TernError(
      "LOG_LIMIT",
      `${LOG_LIMIT_ENV}=${JSON.stringify(raw)} is not a number of bytes. Set it to a whole number of at least 1 ` +
        `(for example ${DEFAULT_LOG_LIMIT_BYTES} for 10 MiB, the default), or unset it.`,
    );
  }
  return bytes;
}

/** How many bytes a log record counts for: its message and its fields as JSON, in UTF-8. */
export function logRecordBytes(record: LogRecord): number {
  let bytes = Buffer.byteLength(record.message, "utf8");
  if (record.fields !== undefined) {
    try {
      bytes += Buffer.byteLength(JSON.stringify(record.fields) ?? "", "utf8");
    } catch {
      // Fields that are not JSON (a cycle, a BigInt) are refused by the backend when stored;
      // here they count for nothing rather than failing the task that logged them.
    }
  }
  return bytes;
}

/** What a {@link LogBudget} dropped so far. */
export interface LogBudgetDropped {
  readonly records: number;
  readonly bytes: number;
}

/** Options of {@link LogBudget}. */
export interface LogBudgetOptions {
  /** Bytes of log output (see {@link logRecordBytes}) kept per run. @default {@link logLimitBytes}() */
  readonly limitBytes?: number;
  /** The clock of the note record. @default Date.now */
  readonly now?: () => number;
}

/** A megabyte figure for messages: `10 MiB`, `1.5 MiB`, `512 KiB`, `100 bytes`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${Number((bytes / (1024 * 1024)).toFixed(1))} MiB`;
  if (bytes >= 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  return `${bytes} byte${bytes === 1 ? "" : "s"}`;
}

/**
 * The cap on one run's captured log output. Every record a run's tasks log (through their
 * logger or `console`) goes through {@link LogBudget.admit}, in order: records are kept while
 * the bytes kept stay within the limit; the first record that would go over it, and every record
 * after it, is dropped, and that first drop returns one note record (a `warn` of the same task
 * run) to store in its place, saying that the rest was dropped and how to raise the limit.
 * Nothing here does I/O: the caller stores what `admit` returns.
 *
 * @example
 * const budget = new LogBudget();            // TERN_LOG_LIMIT_BYTES, else 10 MiB
 * onLog: (taskRun, record) => buffer.push(...budget.admit({ ...record, taskRunId: taskRun.id }))
 */
export class LogBudget<R extends LogRecord = LogRecord> {
  /** The limit, in bytes. */
  readonly limitBytes: number;
  readonly #now: () => number;
  #keptBytes = 0;
  #keptRecords = 0;
  #droppedBytes = 0;
  #droppedRecords = 0;
  /** The first record dropped, without its fields: what the note and the summary are made from. */
  #firstDropped: Omit<R, "fields"> | undefined;

  constructor(options: LogBudgetOptions = {}) {
    const limit = options.limitBytes ?? logLimitBytes();
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new TernError(
        "LOG_LIMIT",
        `A log limit of ${String(limit)} bytes is not one; give a whole number of at least 1 (default ${DEFAULT_LOG_LIMIT_BYTES}).`,
      );
    }
    this.limitBytes = limit;
    this.#now = options.now ?? Date.now;
  }

  /** Whether the limit was reached: every record from now on is dropped. */
  get exceeded(): boolean {
    return this.#droppedRecords > 0;
  }

  /** Bytes and records kept so far (the note not counted). */
  get kept(): LogBudgetDropped {
    return { records: this.#keptRecords, bytes: this.#keptBytes };
  }

  /** Bytes and records dropped so far. */
  get dropped(): LogBudgetDropped {
    return { records: this.#droppedRecords, bytes: this.#droppedBytes };
  }

  /**
   * Decides about the next record: resolves `[record]` when it is kept, `[note]` when it is the
   * first one dropped (the note takes the record's other properties, such as its `taskRunId`,
   * with a `warn` level, the `logger` source and no fields), and `[]` for every record after.
   */
  admit(record: R): R[] {
    const bytes = logRecordBytes(record);
    if (this.#droppedRecords === 0 && this.#keptBytes + bytes <= this.limitBytes) {
      this.#keptBytes += bytes;
      this.#keptRecords += 1;
      return [record];
    }
    this.#droppedBytes += bytes;
    this.#droppedRecords += 1;
    if (this.#droppedRecords > 1) return [];
    const { fields: _fields, ...rest } = record;
    this.#firstDropped = rest;
    return [this.#warning(rest, this.noteMessage())];
  }

  /** The text of the note: the limit, that the rest was dropped, and how to change it. */
  noteMessage(): string {
    return (
      `tern: this run's log output went over ${formatBytes(this.limitBytes)}; the rest of it was dropped ` +
      `(the limit per run is ${LOG_LIMIT_ENV}=${this.limitBytes}; raise it to keep more, or log less).`
    );
  }

  /**
   * A closing summary of what was dropped, to store when the run ends (a `warn` record of the task
   * run whose record was the first dropped), or `undefined` when nothing was.
   */
  summary(): R | undefined {
    if (this.#firstDropped === undefined) return undefined;
    return this.#warning(
      this.#firstDropped,
      `tern: ${this.#droppedRecords} log record${this.#droppedRecords === 1 ? " was" : "s were"} dropped ` +
        `(${formatBytes(this.#droppedBytes)}) over this run's ${formatBytes(this.limitBytes)} limit (${LOG_LIMIT_ENV}).`,
    );
  }

  #warning(base: Omit<R, "fields">, message: string): R {
    return { ...base, timeMs: this.#now(), level: "warn", source: "logger", message } as unknown as R;
  }
}
