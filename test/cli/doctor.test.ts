import { existsSync } from "node:fs";
import { open, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { type DynamoDbLocal, LOCAL_REGION, startDynamoDbLocal } from "@tern/test-support/dynamodb-local";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type TernHome, ternHome } from "../support/cli.js";
import { dynamoDbCliEnv } from "../support/dynamodb-cli.js";
import { writeRunsWithLogs } from "../support/state-db.js";

interface DoctorJson {
  ok: boolean;
  ternHome: string;
  backend: string;
  checks: Array<{ name: string; status: string; detail: string }>;
  sqlite?: {
    path: string;
    exists: boolean;
    check: string;
    ok: boolean;
    problems: string[];
    schemaVersion?: number;
    advice?: string;
  };
}

let t: TernHome;
let db: string;
beforeEach(async () => {
  t = await ternHome();
  db = join(t.home, "state.db");
});
afterEach(() => t.cleanup());

/** Writes a valid state.db, the way tern writes it, with `runs` runs of `logsPerRun` log records each. Resolves the run ids. */
const writeStateDb = (runs = 3, logsPerRun = 200) =>
  writeRunsWithLogs(db, Array(runs).fill(logsPerRun), (runId, n) => ({
    taskRunId: `${runId}/load`,
    timeMs: n,
    level: "info",
    message: `row ${n} ${"x".repeat(200)}`,
    source: "console",
  }));

async function overwrite(offset: number, bytes: number): Promise<void> {
  const file = await open(db, "r+");
  try {
    await file.write(Buffer.alloc(bytes, 0x5a), 0, bytes, offset);
  } finally {
    await file.close();
  }
}

/** What every message about a corrupt file says: that it is corrupt, which file, and what to do. */
function expectCorruptAdvice(text: string): void {
  expect(text).toContain(db);
  expect(text).toMatch(/restore .*state\.db from a backup, or move it away/);
  expect(text).toContain(`${db}-wal and ${db}-shm`);
  expect(text).toMatch(/tern starts a fresh, empty database there/);
  expect(text).not.toMatch(/writable|disk is not full/);
}

describe("tern doctor on the embedded SQLite backend", () => {
  it("reports TERN_HOME, the backend and a passing integrity check on a good database", async () => {
    await writeStateDb();
    const result = await t.tern(["doctor"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`TERN_HOME   ${t.home}`);
    expect(result.stdout).toContain(`backend     sqlite://${db}`);
    expect(result.stdout).toMatch(/integrity +ok: integrity_check: ok \(.*state\.db, schema version \d+\)/);
    expect(result.stdout).toContain("No problems found.");

    const report = await t.json<DoctorJson>(["doctor", "--quick"]);
    expect(report).toMatchObject({
      ok: true,
      ternHome: t.home,
      backend: `sqlite://${db}`,
      checks: [{ name: "integrity", status: "ok" }],
      sqlite: { path: db, exists: true, check: "quick_check", ok: true, problems: [] },
    });
    expect(report.sqlite?.schemaVersion).toBeGreaterThan(0);
    // The check leaves no WAL files behind, and the database is still good for tern.
    expect(existsSync(`${db}-wal`) || existsSync(`${db}-shm`)).toBe(false);
    expect((await t.json<unknown[]>(["runs"])).length).toBe(3);
  });

  it("says a missing database is no problem, and does not create it", async () => {
    const result = await t.tern(["doctor"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`${db} does not exist yet; tern creates it on first use`);
    expect(existsSync(db)).toBe(false);
  });

  it("finds a truncated database corrupt, lists the problem and what to do, and exits 1", async () => {
    await writeStateDb();
    await truncate(db, Math.floor((await stat(db)).size / 2));
    const result = await t.tern(["doctor"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/integrity +failed: integrity_check found a problem in .*: the database is corrupt/);
    expect(result.stdout).toContain("SQLITE_CORRUPT");
    expectCorruptAdvice(result.stdout);
    expect(result.stdout).toContain("Problems found");

    const json = await t.tern(["doctor", "--json"]);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as DoctorJson;
    expect(report).toMatchObject({
      ok: false,
      checks: [{ name: "integrity", status: "failed" }],
      sqlite: { ok: false, exists: true, check: "integrity_check" },
    });
    expect(report.sqlite?.problems.length).toBeGreaterThan(0);
    expectCorruptAdvice(report.sqlite?.advice ?? "");
  });

  it("finds a database with a damaged header not a database, and exits 1", async () => {
    await writeStateDb();
    await overwrite(0, 100);
    const result = await t.tern(["doctor", "--quick"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("quick_check found a problem");
    expect(result.stdout).toContain("SQLITE_NOTADB");
    expectCorruptAdvice(result.stdout);
  });
});

describe("a corrupt state.db through the other commands", () => {
  it("a truncated file: tern runs says the database is corrupt, names it, and what to do", async () => {
    await writeStateDb();
    await truncate(db, Math.floor((await stat(db)).size / 2));
    const result = await t.tern(["runs"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tern runs: SQLite backend: cannot open the state database: the database file /);
    expect(result.stderr).toMatch(/state\.db is corrupt \(SQLITE_CORRUPT: /);
    expectCorruptAdvice(result.stderr);
    expect(result.stderr).toContain("`tern doctor` runs SQLite's integrity check");
  });

  it("a damaged header: the file is named as not a SQLite database", async () => {
    await writeStateDb();
    await overwrite(0, 100);
    const result = await t.tern(["flows"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/state\.db is not a SQLite database \(its header is damaged\) \(SQLITE_NOTADB/);
    expectCorruptAdvice(result.stderr);
  });

  it("damaged log pages: the database opens, and tern logs names the corruption when it reads them", async () => {
    const [, , last] = await writeStateDb(3, 2000);
    const size = (await stat(db)).size;
    // The last run's log records fill the end of the file: damage pages there, past the schema.
    const page = 4096;
    await overwrite(Math.floor((size * 0.8) / page) * page, page * 4);
    expect((await t.tern(["runs"])).code).toBe(0);
    const result = await t.tern(["logs", last as string]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot read logs: the database file .*state\.db is corrupt \(SQLITE_CORRUPT/);
    expectCorruptAdvice(result.stderr);
    expect((await t.tern(["doctor"])).code).toBe(1);
  });
});

describe("tern doctor on DynamoDB (DynamoDB Local)", () => {
  let local: DynamoDbLocal;
  let env: Record<string, string>;

  beforeAll(async () => {
    local = await startDynamoDbLocal();
    env = await dynamoDbCliEnv(local.endpoint, "tern-doctor");
  }, 60_000);
  afterAll(async () => {
    await local?.stop();
  });

  it("checks the connection with a read and skips the integrity check, saying so", async () => {
    const result = await t.tern(["doctor"], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`backend     ${env.TERN_BACKEND}`);
    expect(result.stdout).toMatch(/connection +ok: read one run in \d+ ms/);
    expect(result.stdout).toMatch(/integrity +skipped: SQLite's integrity check is for the embedded backend/);
    const report = await t.json<DoctorJson>(["doctor"], env);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => [c.name, c.status])).toEqual([
      ["connection", "ok"],
      ["integrity", "skipped"],
    ]);
    expect(report.sqlite).toBeUndefined();
  });

  it("reports a table it cannot reach as a failed connection, and exits 1", async () => {
    const result = await t.tern(["doctor"], {
      ...env,
      TERN_BACKEND: `dynamodb://no-such-table?region=${LOCAL_REGION}&endpoint=${encodeURIComponent(local.endpoint)}`,
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/connection +failed: .*no-such-table/);
    expect(result.stdout).toContain("Problems found");
  });
});
