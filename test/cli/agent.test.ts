import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawnTern, stopTern, type TernHome, ternHome, waitForOutput } from "../support/cli.js";

interface RunJson {
  id: string;
  state: string;
  reason?: string;
  deployment?: Record<string, unknown>;
  taskRuns: Array<{ slug: string; state: string; attempts: number }>;
  history: Array<{ state: string; reason?: string }>;
}

let t: TernHome;
beforeEach(async () => {
  t = await ternHome();
});
afterEach(() => t.cleanup());

const read = (file: string) => readFile(file, "utf8").catch(() => "");

/** How long a test waits for a child process to get somewhere, and how often it looks. */
const WAIT = { timeout: 20_000, interval: 100 };

function runnerPid(run: RunJson): string | undefined {
  return /runner pid (\d+)/.exec(run.history.find((h) => h.state === "Running")?.reason ?? "")?.[1];
}

describe("environments through the agent", () => {
  it("runs onStart and onExit in the runner process, around the flow", async () => {
    const log = join(t.home, "callbacks.log");
    const env = { TERN_EXAMPLE_LOG: log };
    expect((await t.tern(["register", "examples/callbacks.ts"])).code).toBe(0);
    const { id } = await t.json<{ id: string }>(["run", "hello-callbacks"]);
    const agent = await t.tern(["agent", "--once"], env);
    expect(agent.code).toBe(0);
    expect(agent.stderr).toContain(`| Hello! Starting run ${id}`);
    const run = await t.json<RunJson>(["runs", "show", id]);
    expect(run.state).toBe("Success");
    const pid = runnerPid(run);
    expect(pid).toMatch(/^\d+$/);
    const lines = (await read(log)).trim().split("\n");
    expect(lines).toEqual([
      `Hello! Starting run ${id} (pid ${pid})`,
      `Goodbye! The run ended Success: 1 task run finished; all reference tasks succeeded (pid ${pid})`,
    ]);
  });

  it("fails the run when onStart throws: the flow does not run, onExit still does", async () => {
    const marks = join(t.home, "marks.log");
    expect((await t.tern(["register", "test/fixtures/behaviours.ts"])).code).toBe(0);
    const { id } = await t.json<{ id: string }>(["run", "bad-start"]);
    await t.tern(["agent", "--once"], { TERN_TEST_MARKS: marks });
    const run = await t.json<RunJson>(["runs", "show", id]);
    expect(run.state).toBe("Failed");
    expect(run.reason).toBe("onStart failed: database is not reachable");
    expect(await read(marks)).toBe("onExit Failed\n");
  });

  it("runs a custom environment's setup and execute from the bundle, outside the agent", async () => {
    const audit = join(t.home, "audit", "audit.log");
    expect((await t.tern(["register", "examples/custom-environment.ts"])).code).toBe(0);
    const flows = await t.json<Array<{ flow: string; environmentType: string }>>(["flows"]);
    expect(flows).toEqual([expect.objectContaining({ flow: "audited", environmentType: "AuditedLocalEnvironment" })]);
    const { id } = await t.json<{ id: string }>(["run", "audited"]);
    expect((await t.tern(["agent", "--once"], { TERN_EXAMPLE_AUDIT: audit })).code).toBe(0);
    const run = await t.json<RunJson>(["runs", "show", id]);
    expect(run.state).toBe("Success");
    expect(run.deployment).toMatchObject({ kind: "process", audited: true });
    expect(await read(audit)).toMatch(new RegExp(`^execute run=${id} flow=audited pid=\\d+\\n$`));
  });
});

describe("runs that go wrong", () => {
  beforeEach(async () => {
    expect((await t.tern(["register", "test/fixtures/behaviours.ts"])).code).toBe(0);
  });

  it("fails a run whose runner exits without reporting, with the exit code and its last error line", async () => {
    const { id } = await t.json<{ id: string }>(["run", "crash"]);
    await t.tern(["agent", "--once"]);
    const run = await t.json<RunJson>(["runs", "show", id]);
    expect(run.state).toBe("Failed");
    expect(run.reason).toBe(
      "the runner exited with code 3 without reporting a final state; its last output: about to exit with code 3",
    );
  });

  it("reports a failed task through run --wait, runs show and logs", async () => {
    const agent = spawnTern(["agent", "--poll-interval-ms", "100"], { TERN_HOME: t.home });
    try {
      await waitForOutput(agent, /with no labels/);
      const waited = await t.tern(["run", "failing", "--wait", "--json"]);
      expect(waited.code).toBe(1);
      const { id, state } = JSON.parse(waited.stdout) as { id: string; state: string };
      expect(state).toBe("Failed");
      const run = await t.json<RunJson>(["runs", "show", id]);
      expect(run.reason).toBe("1 task run did not succeed: boom (Failed: the warehouse is closed)");
      expect(run.taskRuns).toEqual([expect.objectContaining({ slug: "boom", state: "Failed", attempts: 1 })]);
      const logs = await t.tern(["logs", id]);
      expect(logs.stdout).toMatch(/INFO {2}\[boom\] working on it/);
    } finally {
      await stopTern(agent);
    }
  });

  it("cancels a running run through its runner, which aborts the task", async () => {
    const marks = join(t.home, "marks.log");
    const agent = spawnTern(["agent", "--poll-interval-ms", "100"], { TERN_HOME: t.home, TERN_TEST_MARKS: marks });
    try {
      const { id } = await t.json<{ id: string }>(["run", "slow"]);
      await expect.poll(() => read(marks), WAIT).toContain("slow started");
      const cancelled = await t.tern(["cancel", id]);
      expect(cancelled.stdout).toBe(`run ${id}: Cancelling\n`);
      await expect.poll(async () => (await t.json<RunJson>(["runs", "show", id])).state, WAIT).toBe("Cancelled");
      expect(await read(marks)).toBe("slow started\nslow aborted\n");
      const run = await t.json<RunJson>(["runs", "show", id]);
      expect(run.history.map((h) => h.state)).toEqual(["Scheduled", "Submitted", "Running", "Cancelling", "Cancelled"]);
    } finally {
      await stopTern(agent);
    }
  });

  it("cancels a scheduled run at once, and an agent does not start it", async () => {
    const { id } = await t.json<{ id: string }>(["run", "failing"]);
    expect((await t.tern(["cancel", id])).stdout).toBe(`run ${id}: Cancelled\n`);
    await t.tern(["agent", "--once"]);
    expect((await t.json<RunJson>(["runs", "show", id])).state).toBe("Cancelled");
    const again = await t.tern(["execute", id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already ended Cancelled: cancelled by request; nothing to execute/);
  });
});

describe("pre-built storage", () => {
  it("registers flows that the file built itself, with --no-build", async () => {
    const result = await t.json<Array<{ name: string; status: string; version: number }>>([
      "register",
      "examples/prebuilt.ts",
      "--no-build",
    ]);
    expect(result.map((r) => [r.name, r.status, r.version])).toEqual([
      ["prebuilt-first", "new", 1],
      ["prebuilt-second", "new", 1],
    ]);
    const { id } = await t.json<{ id: string }>(["run", "prebuilt-second"]);
    await t.tern(["agent", "--once"]);
    const run = await t.json<RunJson & { outputs: Record<string, unknown> }>(["runs", "show", id]);
    expect(run.outputs.sum).toEqual({ kind: "json", value: 7 });
  });

  it("rejects --no-build for a file whose storage was never built", async () => {
    const result = await t.tern(["register", "examples/etl.ts", "--no-build"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/registered with build: false, but its storage holds no build of it/);
    expect(await t.json(["flows"])).toEqual([]);
  });
});
