import type BetterSqlite3 from "better-sqlite3";
import { BackendError, TernError } from "../errors.js";
import type { Row } from "./sqlite-schema.js";

/** Positional (`?`) or named (`@name`) parameters of a statement. */
export type SqlParams = unknown[] | Record<string, unknown>;

/**
 * An open better-sqlite3 database as `SqliteBackend` uses it: statements prepared once and
 * cached, writes in IMMEDIATE transactions, and SQLite's failures wrapped into `BackendError`s
 * that name the file.
 */
export class SqliteConnection {
  readonly #db: BetterSqlite3.Database;
  readonly #url: string;
  readonly #busyTimeoutMs: number;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();

  constructor(db: BetterSqlite3.Database, url: string, busyTimeoutMs: number) {
    this.#db = db;
    this.#url = url;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  /** The first row `sql` returns, if any. */
  get(sql: string, params: SqlParams = []): Row | undefined {
    const statement = this.#statement(sql);
    return (Array.isArray(params) ? statement.get(...params) : statement.get(params)) as Row | undefined;
  }

  /** Every row `sql` returns. */
  all(sql: string, params: SqlParams = []): Row[] {
    const statement = this.#statement(sql);
    return (Array.isArray(params) ? statement.all(...params) : statement.all(params)) as Row[];
  }

  /** Runs `sql` for its effect. */
  run(sql: string, params: SqlParams = []): void {
    const statement = this.#statement(sql);
    if (Array.isArray(params)) statement.run(...params);
    else statement.run(params);
  }

  /** Runs the reads in `fn`; `operation` names it in errors ("list runs"). */
  read<T>(operation: string, fn: () => T): T {
    return this.#guard(operation, fn);
  }

  /**
   * Runs `fn` in an IMMEDIATE transaction: it takes the write lock before its first read, so
   * what it read cannot change before it writes, in this process or another one.
   */
  write<T>(operation: string, fn: () => T): T {
    return this.#guard(operation, () => this.#db.transaction(fn).immediate());
  }

  /** Closes the database; later calls do nothing. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #statement(sql: string): BetterSqlite3.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #guard<T>(operation: string, fn: () => T): T {
    if (!this.#db.open) {
      throw new BackendError(`SQLite backend ${this.#url}: cannot ${operation}, the backend was closed.`);
    }
    try {
      return fn();
    } catch (error) {
      if (error instanceof TernError) throw error;
      const code = (error as { code?: unknown }).code;
      const advice =
        code === "SQLITE_BUSY"
          ? `another process held the database lock for more than ${this.#busyTimeoutMs} ms; retry, or stop that process`
          : code === "SQLITE_CONSTRAINT_FOREIGNKEY"
            ? "it refers to a run or flow version that does not exist"
            : "check that the file is writable and the disk is not full";
      throw new BackendError(
        `SQLite backend ${this.#url}: cannot ${operation} (${(error as Error).message}): ${advice}.`,
        // A lock held by another process passes; a missing row or a full disk does not.
        { cause: error, retryable: code === "SQLITE_BUSY" },
      );
    }
  }
}
