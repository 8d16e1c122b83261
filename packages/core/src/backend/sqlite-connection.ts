import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { BackendError, isTernError } from "../errors.js";
import { migrateSqliteSchema, type Row } from "./sqlite-schema.js";

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
      if (isTernError(error)) throw error;
      const code = (error as { code?: unknown }).code;
      if (isCorruptionCode(code)) throw corruptDatabaseError(this.#url, operation, error);
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

/** Whether a better-sqlite3 error code says the file is not a sound SQLite database. */
export function isCorruptionCode(code: unknown): boolean {
  return typeof code === "string" && (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT"));
}

/** The path of a `sqlite://<path>` URL (a bare path is returned as it is). */
export function sqlitePath(url: string): string {
  return url.startsWith("sqlite://") ? url.slice("sqlite://".length) : url;
}

/**
 * What to do about a corrupt database file, as sentences: restore it or move it away with its
 * WAL files, and check it with `tern doctor`.
 */
export function corruptDatabaseAdvice(path: string, options: { doctor?: boolean } = {}): string {
  return (
    `Stop the tern agents and runners that use it, then restore ${path} from a backup, or move it away ` +
    `(together with ${path}-wal and ${path}-shm, SQLite's write-ahead log of that file, if they exist) so that ` +
    "tern starts a fresh, empty database there; the runs and logs it held are then gone." +
    (options.doctor === false ? "" : " `tern doctor` runs SQLite's integrity check on the file.")
  );
}

/** The error for a file SQLite reports as corrupt or as not a database, naming it and what to do. */
export function corruptDatabaseError(url: string, operation: string, cause: unknown): BackendError {
  const path = sqlitePath(url);
  const code = (cause as { code?: unknown }).code;
  const what = code === "SQLITE_NOTADB" ? "is not a SQLite database (its header is damaged)" : "is corrupt";
  return new BackendError(
    `SQLite backend: cannot ${operation}: the database file ${path} ${what} ` +
      `(${String(code)}: ${(cause as Error).message}). ${corruptDatabaseAdvice(path)}`,
    { cause },
  );
}

/**
 * better-sqlite3, loaded on first use (importing @tern/core never needs the native module);
 * `what` says what it was needed for ("open /path/state.db").
 */
export async function loadSqliteDriver(what: string): Promise<typeof BetterSqlite3> {
  try {
    return (await import("better-sqlite3")).default;
  } catch (error) {
    throw new BackendError(
      `SQLite backend: cannot load the native module better-sqlite3 to ${what} (${(error as Error).message}). ` +
        "Reinstall dependencies on this machine (`npm install`, `pnpm install`), with the same Node.js version that runs tern.",
      { cause: error },
    );
  }
}

/**
 * Opens (creating when missing, with its parent directories) the database file at the absolute
 * `path` in WAL mode, and brings its schema up to date. Fails with a {@link BackendError} naming
 * the path when the file cannot be opened or written.
 */
export async function openSqliteFile(path: string, busyTimeoutMs: number): Promise<BetterSqlite3.Database> {
  // Loaded here, not at the top, so that importing @tern/core never needs the native module.
  const Database = await loadSqliteDriver(`open ${path}`);
  let db: BetterSqlite3.Database | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: busyTimeoutMs });
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.pragma("journal_mode = WAL");
    db.pragma("foreign_keys = ON");
    migrateSqliteSchema(db, path);
    return db;
  } catch (error) {
    db?.close();
    if (isTernError(error)) throw error;
    const code = (error as { code?: unknown }).code;
    if (isCorruptionCode(code)) throw corruptDatabaseError(`sqlite://${path}`, "open the state database", error);
    throw new BackendError(
      `SQLite backend: cannot open ${path} (${typeof code === "string" ? code : (error as Error).message}). ` +
        `Make ${dirname(path)} a writable directory, or set TERN_HOME to a writable directory.`,
      { cause: error },
    );
  }
}
