import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NotFoundError } from "@tern/core";
import { BackendError } from "@tern/core/plugin";
import { SqliteBackend } from "@tern/core/runtime";
import { backendContract } from "@tern/core/testing";
import { collectClaimer } from "@tern/test-support/claimer";
import { registerTestFlow } from "@tern/test-support/flow-versions";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

let root = "";
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tern-sqlite-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let counter = 0;
backendContract("SqliteBackend", async () => {
  counter += 1;
  return SqliteBackend.open({ path: join(root, `contract-${counter}`, "tern.db") });
});

describe("SqliteBackend", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(root, "case-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("creates missing parent directories and names the file in its url", async () => {
    const path = join(dir, "a", "b", "tern.db");
    const backend = await SqliteBackend.open({ path });
    await backend.close();
    expect(existsSync(path)).toBe(true);
    expect(backend.url).toBe(`sqlite://${path}`);
  });

  it("fails with a BackendError naming the path when its directory cannot be created", async () => {
    // Tests run as root, whom file modes do not stop; a path through a regular file fails for anyone.
    const file = join(dir, "not-a-directory");
    await writeFile(file, "");
    const path = join(file, "sub", "tern.db");
    const attempt = SqliteBackend.open({ path });
    await expect(attempt).rejects.toThrow(BackendError);
    await expect(attempt).rejects.toThrow(path);
    await expect(attempt).rejects.toThrow(/TERN_HOME/);
    await expect(attempt).rejects.toMatchObject({ cause: { code: "ENOTDIR" } });
  });

  it("migrates a schema-1 file (before annotations, run environment types, schedules and sources) and keeps its versions and runs", async () => {
    const path = join(dir, "old.db");
    const { default: Database } = await import("better-sqlite3");
    const { SQLITE_SCHEMA_VERSION } = await import("../../src/backend/sqlite-schema.js");
    // The file as tern 0.1 wrote it: version 1's tables, one registered version, user_version 1.
    const current = await SqliteBackend.open({ path });
    await registerTestFlow(current, { manifestHash: "b".repeat(64), environmentType: "LocalEnvironment" });
    const { run } = await current.createRun({ project: "p", flow: "etl" });
    await current.close();
    const raw = new Database(path);
    raw.exec("ALTER TABLE flow_versions DROP COLUMN annotations");
    raw.exec("ALTER TABLE flow_versions DROP COLUMN source");
    raw.exec("ALTER TABLE runs DROP COLUMN environment_type");
    raw.exec("DROP TABLE schedules");
    raw.pragma("user_version = 1");
    raw.close();
    const reopened = await SqliteBackend.open({ path });
    expect(await reopened.getFlowVersion("p", "etl", 1)).toMatchObject({ version: 1, manifestHash: "b".repeat(64) });
    await reopened.annotateFlowVersion("p", "etl", 1, { k: "v" });
    expect((await reopened.getFlowVersion("p", "etl"))?.annotations).toEqual({ k: "v" });
    // Runs get their flow version's environment type.
    expect((await reopened.getRun(run.id))?.environmentType).toBe("LocalEnvironment");
    expect(await reopened.listSchedules()).toEqual([]);
    // Old versions have no source; new ones record theirs.
    expect(await reopened.getFlowVersion("p", "etl", 1)).not.toHaveProperty("source");
    const source = { commit: "c".repeat(40), path: "etl.ts", dirty: false };
    const v2 = await registerTestFlow(reopened, { manifestHash: "d".repeat(64), source });
    expect((await reopened.getFlowVersion("p", "etl", v2.version))?.source).toEqual(source);
    await reopened.close();
    const check = new Database(path, { readonly: true });
    expect(check.pragma("user_version", { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
    check.close();
  });

  it("keeps the data when the file is opened again", async () => {
    const path = join(dir, "tern.db");
    const first = await SqliteBackend.open({ path });
    await registerTestFlow(first);
    const { run } = await first.createRun({ project: "p", flow: "etl" });
    await first.close();
    const second = await SqliteBackend.open({ path });
    try {
      expect(await second.getRun(run.id)).toEqual(run);
    } finally {
      await second.close();
    }
  });

  it("rejects task runs and logs of an unknown run with NotFoundError", async () => {
    const backend = await SqliteBackend.open({ path: join(dir, "tern.db") });
    try {
      await expect(backend.saveTaskRuns("no-such-run", [])).rejects.toThrow(NotFoundError);
      await expect(
        backend.appendLogs("no-such-run", [
          { taskRunId: "t", timeMs: 1, level: "info", message: "m", source: "logger" },
        ]),
      ).rejects.toMatchObject({ code: "NOT_FOUND", kind: "run", id: "no-such-run" });
    } finally {
      await backend.close();
    }
  });

  it("rejects calls after close with a BackendError", async () => {
    const backend = await SqliteBackend.open({ path: join(dir, "tern.db") });
    await backend.close();
    await expect(backend.getRun("x")).rejects.toThrow(/closed/);
    await expect(backend.listRuns()).rejects.toThrow(BackendError);
  });

  it("gives each of 200 runs to exactly one of 4 claiming processes", async () => {
    const path = join(dir, "shared.db");
    const backend = await SqliteBackend.open({ path });
    const ids = new Set<string>();
    try {
      await registerTestFlow(backend);
      const now = Date.now();
      for (let i = 0; i < 200; i += 1) {
        ids.add((await backend.createRun({ project: "p", flow: "etl", scheduledAtMs: now - 1_000 + i })).run.id);
      }
    } finally {
      await backend.close();
    }

    const fixture = join(import.meta.dirname, "fixtures", "claimer.ts");
    const children = [1, 2, 3, 4].map((n) =>
      spawn(process.execPath, ["--conditions=@tern/source", "--import", "tsx", fixture, path, `agent-${n}`], {
        stdio: ["pipe", "pipe", "pipe"],
      }),
    );
    try {
      const outputs = children.map((child) => collectClaimer<{ claimed: string[] }>(child));
      await Promise.all(outputs.map((o) => o.ready));
      for (const child of children) child.stdin?.write("go\n");
      const results = await Promise.all(outputs.map((o) => o.done));

      const claimed = results.flatMap((r) => r.claimed);
      // Otherwise one process did all the work and the test proved nothing about contention.
      expect(results.filter((r) => r.claimed.length > 0).length).toBeGreaterThanOrEqual(2);
      expect(claimed).toHaveLength(200);
      expect(new Set(claimed)).toEqual(ids);
      const check = await SqliteBackend.open({ path });
      try {
        const runs = await check.listRuns({ project: "p", limit: 500 });
        expect(runs.every((run) => run.attempts === 1 && run.lease !== undefined)).toBe(true);
      } finally {
        await check.close();
      }
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill();
    }
  }, 15_000);
});
