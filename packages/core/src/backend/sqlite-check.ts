import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { BackendError } from "../errors.js";
import { corruptDatabaseAdvice, isCorruptionCode, loadSqliteDriver } from "./sqlite-connection.js";

/** Options of {@link checkSqliteDatabase}. */
export interface SqliteCheckOptions {
  /**
   * Run `PRAGMA quick_check` (skips the index contents, linear in the file's size) instead of the
   * full `PRAGMA integrity_check`. @default false
   */
  readonly quick?: boolean;
  /** Problems listed at most. @default 20 */
  readonly maxProblems?: number;
}

/** What {@link checkSqliteDatabase} found. */
export interface SqliteCheckResult {
  /** The file checked, absolute. */
  readonly path: string;
  /** Whether the file exists; a missing file is no problem (tern creates it on first use). */
  readonly exists: boolean;
  /** Which check ran: `integrity_check`, `quick_check`, or none when the file is missing. */
  readonly check: "integrity_check" | "quick_check" | "none";
  /** True when the check reported `ok` (or the file does not exist yet). */
  readonly ok: boolean;
  /** What SQLite reported when not `ok`, one entry per problem (at most `maxProblems`). */
  readonly problems: readonly string[];
  /** The schema version stored in the file (`PRAGMA user_version`), when it could be read. */
  readonly schemaVersion?: number;
  /** The WAL files next to it that exist (`<path>-wal`, `<path>-shm`): they belong to the database. */
  readonly walFiles: readonly string[];
  /** What to do when not `ok`. */
  readonly advice?: string;
}

/**
 * Runs SQLite's own consistency check on a tern state file. Nothing is written (no schema is
 * migrated); closing the connection checkpoints the file's write-ahead log as any tern command does. A file SQLite cannot read at all (a damaged header, a truncation) is
 * reported as not `ok` with SQLite's error as its problem; other failures to open it (a missing
 * native module, no permission to read it) throw a {@link BackendError}.
 *
 * @example
 * const result = await checkSqliteDatabase(join(ternHome(), "state.db"));
 * if (!result.ok) console.error(result.problems.join("\n"), result.advice);
 */
export async function checkSqliteDatabase(path: string, options: SqliteCheckOptions = {}): Promise<SqliteCheckResult> {
  const file = resolve(path);
  const walFiles = [`${file}-wal`, `${file}-shm`].filter((f) => existsSync(f));
  const check = options.quick === true ? "quick_check" : "integrity_check";
  if (!existsSync(file)) return { path: file, exists: false, check: "none", ok: true, problems: [], walFiles };
  const max = options.maxProblems ?? 20;
  const Database = await loadSqliteDriver(`check ${file}`);
  const corrupt = (problems: string[], schemaVersion?: number): SqliteCheckResult => ({
    path: file,
    exists: true,
    check,
    ok: false,
    problems,
    ...(schemaVersion === undefined ? {} : { schemaVersion }),
    walFiles,
    advice: corruptDatabaseAdvice(file, { doctor: false }),
  });
  let db: BetterSqlite3.Database | undefined;
  let schemaVersion: number | undefined;
  try {
    // Not `readonly`: a read-only connection to a WAL database creates its -wal and -shm files
    // and cannot remove them on close. This one writes nothing either; closing it checkpoints.
    db = new Database(file, { fileMustExist: true });
    schemaVersion = db.pragma("user_version", { simple: true }) as number;
    const rows = db.pragma(`${check}(${Math.max(1, max)})`) as Array<Record<string, unknown>>;
    const problems = rows.map((row) => String(Object.values(row)[0]));
    if (problems.length === 1 && problems[0] === "ok") {
      return { path: file, exists: true, check, ok: true, problems: [], schemaVersion, walFiles };
    }
    return corrupt(problems, schemaVersion);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (isCorruptionCode(code)) return corrupt([`${String(code)}: ${(error as Error).message}`], schemaVersion);
    throw new BackendError(
      `SQLite backend: cannot check ${file} (${typeof code === "string" ? `${code}: ` : ""}${(error as Error).message}). ` +
        "Check that the file is readable by this user.",
      { cause: error },
    );
  } finally {
    db?.close();
  }
}
