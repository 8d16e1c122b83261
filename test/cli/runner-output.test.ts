import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ROOT, type TernHome, ternHome } from "../support/cli.js";

let t: TernHome;
beforeEach(async () => {
  t = await ternHome();
  expect((await t.tern(["register", "test/fixtures/runner-output.ts"])).code).toBe(0);
});
afterEach(() => t.cleanup());

/** Creates a run of `flow`, executes it with `agent --once` and gives back its id. */
async function runToEnd(flow: string, env: Record<string, string> = {}): Promise<string> {
  const { id } = await t.json<{ id: string }>(["run", flow]);
  const agent = await t.tern(["agent", "--once"], env);
  expect(agent.code, agent.stderr).toBe(0);
  return id;
}

interface LogJson {
  taskRunId: string;
  source: string;
  level: string;
  message: string;
}

describe("the runner's output outside tasks", () => {
  it("is recorded as the run's runner records, in order with the task's, and shown by tern logs", async () => {
    const id = await runToEnd("callbacks");
    const records = await t.json<LogJson[]>(["logs", id]);
    expect(records.map((r) => [r.source, r.level, r.message])).toEqual([
      ["runner", "info", `onStart: opening the warehouse for ${id.slice(0, 8)}`],
      ["console", "info", "task line"],
      ["runner", "warn", "onExit: closing the warehouse after Success"],
    ]);
    expect(records[0]?.taskRunId).toBe(id);
    const text = await t.tern(["logs", id]);
    expect(text.stdout).toMatch(/^\S+ INFO {2}\[runner\] onStart: opening the warehouse for /m);
    expect(text.stdout).toMatch(/^\S+ INFO {2}\[work\] task line$/m);
    expect(text.stdout).toMatch(/^\S+ WARN {2}\[runner\] onExit: closing the warehouse after Success$/m);
  });

  it("counts against the run's log limit", async () => {
    // 50 bytes: the onStart line (43) is kept, the task's line goes over the limit.
    const id = await runToEnd("callbacks", { TERN_LOG_LIMIT_BYTES: "50" });
    const records = await t.json<LogJson[]>(["logs", id]);
    expect(records[0]).toMatchObject({ source: "runner", message: expect.stringMatching(/^onStart: /) });
    expect(records[1]?.message).toMatch(/went over 50 bytes; the rest of it was dropped/);
    expect(records.some((r) => r.message.startsWith("onExit"))).toBe(false);
  });
});

describe("a failing task's stack trace", () => {
  it("names the user's file, relative to its project, and the line that threw", async () => {
    const source = await readFile(join(ROOT, "test/fixtures/runner-output.ts"), "utf8");
    const line = source.split("\n").findIndex((l) => l.includes("throw new Error")) + 1;
    const id = await runToEnd("throws");
    const run = await t.json<{ taskRuns: Array<{ slug: string; error?: { stack?: string } }> }>(["runs", "show", id]);
    const stack = run.taskRuns.find((r) => r.slug === "explode")?.error?.stack ?? "";
    expect(stack).toMatch(new RegExp(`\\(project:test/fixtures/runner-output\\.ts:${line}:\\d+\\)`));
    expect(stack).not.toMatch(/cache[\\/]bundles|\.mjs:/);
    expect(stack).not.toContain(ROOT);
  });
});
