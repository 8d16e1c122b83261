import { backendUrl, checkSqliteDatabase, type SqliteCheckResult, ternHome } from "@tern/core/runtime";
import { type Command, type Io, printJson } from "../cli.js";

/** One thing `tern doctor` looked at. */
interface Check {
  readonly name: string;
  readonly status: "ok" | "failed" | "skipped";
  readonly detail: string;
}

/** What `tern doctor --json` prints. */
interface DoctorReport {
  readonly ok: boolean;
  readonly ternHome: string;
  readonly backend: string;
  readonly checks: readonly Check[];
  /** The SQLite check's result, for the embedded backend. */
  readonly sqlite?: SqliteCheckResult;
}

export const doctorCommand: Command = {
  name: "doctor",
  help: `
Usage: tern doctor [--quick] [--json]

Checks tern's state: prints TERN_HOME and the backend URL in force (TERN_BACKEND, else
sqlite://$TERN_HOME/state.db), then
  - for the embedded SQLite backend, runs SQLite's integrity check on the file, read-only
    (PRAGMA integrity_check; --quick: PRAGMA quick_check, faster on large files), and lists the
    problems it finds with what to do;
  - for another backend (dynamodb://...), checks the connection with one small read; the
    integrity check is SQLite's only and is skipped.
Exit 0 when everything is ok, 1 when the database is corrupt or cannot be reached.

Options:
  --quick   PRAGMA quick_check instead of the full integrity_check
  --json    print { ok, ternHome, backend, checks: [{ name, status, detail }], sqlite? }`,
  options: { quick: { type: "boolean" }, json: { type: "boolean" } },
  positionals: [0, 0],
  async run(args, { io, backend }) {
    const url = backendUrl();
    const home = ternHome();
    const checks: Check[] = [];
    let sqlite: SqliteCheckResult | undefined;
    if (url.startsWith("sqlite://")) {
      sqlite = await checkSqliteDatabase(url.slice("sqlite://".length), { quick: args.values.quick === true });
      checks.push(sqliteCheck(sqlite));
    } else {
      checks.push(await connectionCheck(backend));
      checks.push({
        name: "integrity",
        status: "skipped",
        detail: `SQLite's integrity check is for the embedded backend (sqlite://); ${url.split("://")[0]} keeps its own consistency`,
      });
    }
    const report: DoctorReport = {
      ok: checks.every((c) => c.status !== "failed"),
      ternHome: home,
      backend: url,
      checks,
      ...(sqlite === undefined ? {} : { sqlite }),
    };
    if (args.values.json === true) printJson(io, report);
    else printReport(io, report);
    return report.ok ? 0 : 1;
  },
};

function sqliteCheck(result: SqliteCheckResult): Check {
  const wal = result.walFiles.length > 0 ? `; WAL files beside it: ${result.walFiles.join(", ")}` : "";
  if (!result.exists) {
    return {
      name: "integrity",
      status: "ok",
      detail: `${result.path} does not exist yet; tern creates it on first use`,
    };
  }
  const version = result.schemaVersion === undefined ? "" : `, schema version ${result.schemaVersion}`;
  if (result.ok)
    return { name: "integrity", status: "ok", detail: `${result.check}: ok (${result.path}${version}${wal})` };
  return {
    name: "integrity",
    status: "failed",
    detail:
      `${result.check} found ${result.problems.length === 1 ? "a problem" : `${result.problems.length} problems`} in ` +
      `${result.path}: the database is corrupt${wal}.\n${result.problems.map((p) => `    ${p}`).join("\n")}\n    ${result.advice ?? ""}`,
  };
}

/** One small read (the newest run), timed; a failure is reported, not thrown. */
async function connectionCheck(backend: Parameters<Command["run"]>[1]["backend"]): Promise<Check> {
  const started = Date.now();
  try {
    const db = await backend();
    await db.listRuns({ limit: 1 });
    return { name: "connection", status: "ok", detail: `read one run in ${Date.now() - started} ms` };
  } catch (error) {
    return { name: "connection", status: "failed", detail: (error as Error).message };
  }
}

function printReport(io: Io, report: DoctorReport): void {
  const lines = [`TERN_HOME   ${report.ternHome}`, `backend     ${report.backend}`];
  for (const check of report.checks) lines.push(`${check.name.padEnd(11)} ${check.status}: ${check.detail}`);
  lines.push(report.ok ? "No problems found." : "Problems found: see above.");
  io.out(`${lines.join("\n")}\n`);
}
