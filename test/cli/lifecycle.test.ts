import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawnTern, type TernHome, ternHome } from "../support/cli.js";

interface RunJson {
  id: string;
  state: string;
  reason?: string;
  deployment?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  history: Array<{ state: string; reason?: string }>;
}

let t: TernHome;
beforeEach(async () => {
  t = await ternHome();
});
afterEach(() => t.cleanup());

/** How long a test waits for a child process to get somewhere, and how often it looks. */
const WAIT = { timeout: 20_000, interval: 100 };

const show = (id: string) => t.json<RunJson>(["runs", "show", id]);

describe("the runner's lifecycle", () => {
  beforeEach(async () => {
    expect((await t.tern(["register", "test/fixtures/behaviours.ts"])).code).toBe(0);
  });

  it("exits once the run is recorded, even when a task left a timer running", async () => {
    const { id } = await t.json<{ id: string }>(["run", "lingering"]);
    const started = Date.now();
    const agent = await t.tern(["agent", "--once"]);
    expect(agent.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect((await show(id)).state).toBe("Success");
  });

  it("refuses to execute a run that is already running, and leaves it alone", async () => {
    const marks = join(t.home, "marks.log");
    const { id } = await t.json<{ id: string }>(["run", "slow"]);
    const runner = spawnTern(["execute", id], { TERN_HOME: t.home, TERN_TEST_MARKS: marks });
    try {
      await expect.poll(() => readFile(marks, "utf8").catch(() => ""), WAIT).toContain("slow started");
      const second = await t.tern(["execute", id]);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/is already Running \(runner pid \d+\); a run is executed once/);
      expect(await readFile(marks, "utf8")).toBe("slow started\n");
    } finally {
      runner.kill("SIGTERM");
    }
    await expect.poll(async () => (await show(id)).state, WAIT).toBe("Failed");
    const run = await show(id);
    expect(run.reason).toMatch(/the runner was stopped \(SIGTERM\) while the flow ran/);
    expect(await readFile(marks, "utf8")).toBe("slow started\nslow aborted\n");
  });

  it("records Cancelled, not Failed, when a runner being cancelled is stopped", async () => {
    const marks = join(t.home, "marks.log");
    const { id } = await t.json<{ id: string }>(["run", "slow"]);
    const runner = spawnTern(["execute", id], { TERN_HOME: t.home, TERN_TEST_MARKS: marks });
    await expect.poll(() => readFile(marks, "utf8").catch(() => ""), WAIT).toContain("slow started");
    expect((await t.tern(["cancel", id])).stdout).toBe(`run ${id}: Cancelling\n`);
    runner.kill("SIGTERM");
    await expect.poll(async () => (await show(id)).state, WAIT).toBe("Cancelled");
  });
});

describe("a custom environment that starts nothing the agent can watch", () => {
  it("is not failed when its deploy process exits; the run ends by itself", async () => {
    expect((await t.tern(["register", "test/fixtures/remote-environment.ts"])).code).toBe(0);
    const { id } = await t.json<{ id: string }>(["run", "detached"]);
    expect((await t.tern(["agent", "--once"])).code).toBe(0);
    await expect.poll(async () => (await show(id)).state, WAIT).toBe("Success");
    const run = await show(id);
    expect(run.deployment).toMatchObject({ kind: "detached" });
    expect(run.outputs?.out).toEqual({ kind: "json", value: 42 });
  });
});

describe("a flow that calls require()", () => {
  it("registers and runs: require resolves as the flow's imports do", async () => {
    expect((await t.tern(["register", "test/fixtures/requires-builtin.ts"])).code).toBe(0);
    const { id } = await t.json<{ id: string }>(["run", "requires-builtin"]);
    expect((await t.tern(["agent", "--once"])).code).toBe(0);
    const run = await show(id);
    expect(run.state, run.reason).toBe("Success");
    expect(run.outputs?.name).toMatchObject({ value: "c.txt" });
  });
});
