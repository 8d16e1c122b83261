import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawnTern, stopTern, type TernHome, ternHome, waitForOutput } from "../support/cli.js";

let t: TernHome;
beforeEach(async () => {
  t = await ternHome();
});
afterEach(() => t.cleanup());

describe("tern agent's output", () => {
  it("shows a run's stdout and stderr lines in the order the runner wrote them", async () => {
    expect((await t.tern(["register", "test/fixtures/chatty-flows.ts"])).code).toBe(0);
    const { id } = await t.json<{ id: string }>(["run", "alternating"]);
    const agent = await t.tern(["agent", "--once"]);
    expect(agent.code, agent.stderr).toBe(0);
    const prefix = `agent: run ${id.slice(0, 8)} | `;
    const lines = agent.stderr
      .split("\n")
      .filter((l) => l.startsWith(prefix))
      .map((l) => l.slice(prefix.length))
      .filter((l) => /^(out|err) \d+$/.test(l));
    expect(lines).toEqual(Array.from({ length: 20 }, (_, i) => [`out ${i}`, `err ${i}`]).flat());
  });

  it("prints JSON lines with --json: started, log, polled, stopped", async () => {
    expect((await t.tern(["register", "test/fixtures/quiet-flows.ts"])).code).toBe(0);
    const { id } = await t.json<{ id: string }>(["run", "silent"]);
    const agent = await t.tern(["agent", "--once", "--json"]);
    expect(agent.code, agent.stderr).toBe(0);
    expect(agent.stderr).toBe("");
    const events = agent.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { event: string; agentId: string; timeMs: number });
    const agentId = events[0]?.agentId;
    for (const e of events) expect(e).toMatchObject({ agentId, timeMs: expect.any(Number) });
    expect(events[0]).toMatchObject({ event: "started", labels: [] });
    expect(events.find((e) => e.event === "polled")).toMatchObject({ claimed: 1, submitted: [id], failed: [] });
    expect(events.filter((e) => e.event === "log").length).toBeGreaterThan(0);
    expect(events.at(-1)).toMatchObject({ event: "stopped" });
  });

  it("says on Ctrl-C which runs it waits for, and stops once they end", async () => {
    expect((await t.tern(["register", "test/fixtures/behaviours.ts"])).code).toBe(0);
    const { id } = await t.json<{ id: string }>(["run", "slow"]);
    const agent = spawnTern(["agent", "--poll-interval-ms", "200"], {
      TERN_HOME: t.home,
      TERN_TEST_MARKS: join(t.home, "marks.log"),
    });
    try {
      await waitForOutput(agent, new RegExp(`run ${id.slice(0, 8)} \\| runner: running`));
      const stopping = waitForOutput(
        agent,
        new RegExp(
          `agent: SIGINT: stopping; claiming no more runs and waiting for the run it started to end \\(${id.slice(0, 8)}\\)\\. Press Ctrl-C again to exit without waiting; the runs go on\\.`,
        ),
      );
      agent.kill("SIGINT");
      await stopping;
      const stopped = waitForOutput(agent, /agent: stopped\n/);
      expect((await t.tern(["cancel", id])).code).toBe(0);
      await stopped;
    } finally {
      await stopTern(agent);
    }
  });
});

describe("tern cancel --json", () => {
  it("prints the run's state after it, and whether it changed it", async () => {
    expect((await t.tern(["register", "test/fixtures/quiet-flows.ts"])).code).toBe(0);
    const { id } = await t.json<{ id: string }>(["run", "silent"]);
    expect(await t.json(["cancel", id])).toEqual({ id, state: "Cancelled", changed: true });
    expect(await t.json(["cancel", id.slice(0, 8)])).toEqual({ id, state: "Cancelled", changed: false });
  });
});
