import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { RunLogRecord } from "@tern/core/plugin";
import { formatLogLine, SqliteBackend } from "@tern/core/runtime";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ROOT, type TernHome, ternHome } from "../support/cli.js";
import { writeRunsWithLogs } from "../support/state-db.js";

let t: TernHome;
beforeEach(async () => {
  t = await ternHome();
});
afterEach(() => t.cleanup());

/** A state.db under TERN_HOME with one run per entry of `counts`, each with that many log records. */
const runsWithLogs = (counts: readonly number[], record: (runId: string, n: number) => RunLogRecord) =>
  writeRunsWithLogs(join(t.home, "state.db"), counts, record);

const small = (runId: string, n: number): RunLogRecord => ({
  taskRunId: `${runId}/${n % 3 === 0 ? "extract" : "load"}`,
  timeMs: 1_700_000_000_000 + n,
  level: n % 7 === 0 ? "warn" : "info",
  message: n === 5 ? 'a "quoted"\nmultiline\tmessage é😀' : `line ${n}`,
  source: n % 2 === 0 ? "console" : "logger",
  ...(n % 100 === 1 ? { fields: { n, nested: { list: [1, "two", null] } } } : {}),
});

describe("tern logs reads page by page", () => {
  it("prints every record of a log of several pages once, in order, as text and as a JSON array", async () => {
    const [id, empty] = await runsWithLogs([1234, 0], small);
    const backend = await SqliteBackend.open({ path: join(t.home, "state.db") });
    const all = await backend.getLogs(id as string);
    await backend.close();
    expect(all).toHaveLength(1234);

    const text = await t.tern(["logs", id as string]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe(
      all.map((r) => `${formatLogLine(r.taskRunId.slice((id as string).length + 1), r)}\n`).join(""),
    );

    const json = await t.tern(["logs", id as string, "--json"]);
    expect(json.code, json.stderr).toBe(0);
    // The same layout as JSON.stringify(records, null, 2), written a page at a time.
    expect(json.stdout).toBe(`${JSON.stringify(all, null, 2)}\n`);
    expect(JSON.parse(json.stdout)).toEqual(all);

    expect(await t.tern(["logs", empty as string])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(new RegExp(`^Run ${empty} \\(\\w+.*\\) has no task output\\.\\n`)),
    });
    expect(await t.tern(["logs", empty as string, "--json"])).toMatchObject({ code: 0, stdout: "[]\n" });
  });

  it("streams 64 MB of logs as JSON within a 64 MB heap, through a pipe", { timeout: 120_000 }, async () => {
    // 64,000 records of 1 KB, as a task that printed 64 MB to the console leaves them (before
    // the per-run cap, or with TERN_LOG_LIMIT_BYTES raised). Reading them all at once takes
    // several times that in heap; a page at a time takes a few hundred KB.
    const kb = "k".repeat(1000);
    const [id] = await runsWithLogs([64_000], (runId, n) => ({
      taskRunId: `${runId}/print`,
      timeMs: n,
      level: "info",
      message: `${String(n).padStart(6, "0")} ${kb}`,
      source: "console",
    }));
    const out = join(t.home, "logs.json");
    const child = spawn(
      process.execPath,
      [
        "--max-old-space-size=64",
        "--conditions=@tern/source",
        "--import",
        "tsx",
        join(ROOT, "packages", "cli", "src", "main.ts"),
        "logs",
        id as string,
        "--json",
      ],
      {
        cwd: ROOT,
        env: { ...process.env, NODE_OPTIONS: undefined, TERN_HOME: t.home },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await pipeline(child.stdout, createWriteStream(out));
    expect(await exited, stderr).toBe(0);
    const records = JSON.parse(await readFile(out, "utf8")) as RunLogRecord[];
    expect(records).toHaveLength(64_000);
    expect(records.every((r, n) => r.message.startsWith(`${String(n).padStart(6, "0")} `))).toBe(true);
  });
});
