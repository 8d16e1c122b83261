import { join } from "node:path";
import { SqliteBackend } from "@tern/core/runtime";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { spawnTern, stopTern, type TernHome, ternHome, waitForOutput } from "../support/cli.js";

interface RunJson {
  id: string;
  state: string;
  labels: string[];
}

/**
 * The seeds' label rule, through the CLI: an agent picks up a run only if the agent's labels
 * include all of the run's labels; a run with no labels only goes to an agent with no labels.
 */
describe("labels decide which agent picks up a run", () => {
  let t: TernHome;

  beforeAll(async () => {
    t = await ternHome();
    const registered = await t.tern(["register", "examples/labels.ts", "--project", "labels"]);
    expect(registered.code, registered.stderr).toBe(0);
  });
  afterAll(() => t.cleanup());

  async function newRun(flow: string, ...extra: string[]): Promise<string> {
    const { id } = await t.json<{ id: string }>(["run", flow, "--project", "labels", ...extra]);
    return id;
  }
  const show = (id: string) => t.json<RunJson>(["runs", "show", id]);
  const agentOnce = (...labels: string[]) =>
    t.tern(["agent", "--once", ...(labels.length > 0 ? ["--labels", labels.join(",")] : [])]);

  /**
   * Resolves once the running agent without labels has begun two polls after this call: the
   * first of them has then ended, having seen every run created before (each poll records the
   * agent, then claims).
   */
  async function nextPollsOfUnlabelledAgent(): Promise<void> {
    const backend = await SqliteBackend.open({ path: join(t.home, "state.db") });
    try {
      const lastPoll = async () =>
        (await backend.listAgents()).find((a) => a.labels.length === 0 && a.stoppedAtMs === undefined)?.lastSeenAtMs ??
        0;
      const since = Date.now();
      const first = await vi.waitFor(
        async () => {
          const at = await lastPoll();
          expect(at, "a poll of the agent without labels").toBeGreaterThan(since);
          return at;
        },
        { timeout: 10_000, interval: 50 },
      );
      await expect.poll(lastPoll, { timeout: 10_000, interval: 50 }).toBeGreaterThan(first);
    } finally {
      await backend.close();
    }
  }

  it("an agent with labels dev,staging picks up a run labelled dev", async () => {
    const id = await newRun("labeled-dev");
    expect((await show(id)).labels).toEqual(["dev"]);
    expect((await agentOnce("dev", "staging")).code).toBe(0);
    expect((await show(id)).state).toBe("Success");
  });

  it("an agent without labels does not pick up a run labelled dev, and `why` names the missing label", async () => {
    const id = await newRun("labeled-dev");
    const agent = spawnTern(["agent", "--poll-interval-ms", "100"], { TERN_HOME: t.home });
    try {
      await waitForOutput(agent, /with no labels/);
      await nextPollsOfUnlabelledAgent();
      expect((await show(id)).state).toBe("Scheduled");
      const why = await t.tern(["why", id]);
      expect(why.code).toBe(0);
      expect(why.stdout).toMatch(/has no labels; the run needs labels dev \(missing: dev\)/);
      expect(why.stdout).toMatch(/No live agent's labels fit the run's labels dev/);
    } finally {
      expect(await stopTern(agent)).toBe(0);
    }
    // A stopped agent no longer counts.
    expect((await t.tern(["why", id])).stdout).toMatch(/No agent is running/);
    await agentOnce("dev");
    expect((await show(id)).state).toBe("Success");
  });

  it("an agent with labels does not pick up a run without labels", async () => {
    const id = await newRun("unlabeled");
    expect((await show(id)).labels).toEqual([]);
    await agentOnce("dev");
    expect((await show(id)).state).toBe("Scheduled");
    const agent = spawnTern(["agent", "--labels", "dev", "--poll-interval-ms", "100"], { TERN_HOME: t.home });
    try {
      await waitForOutput(agent, /with labels dev/);
      const why = await t.json<{ findings: string[]; willBePickedUp: boolean }>(["why", id]);
      expect(why.willBePickedUp).toBe(false);
      expect(why.findings.join("\n")).toMatch(/a run with no labels is only picked up by an agent with no labels/);
    } finally {
      await stopTern(agent);
    }
    await agentOnce();
    expect((await show(id)).state).toBe("Success");
  });

  it("an agent without labels picks up a run without labels", async () => {
    const id = await newRun("unlabeled");
    await agentOnce();
    expect((await show(id)).state).toBe("Success");
  });

  it("an agent whose labels lack one of the run's labels does not pick it up", async () => {
    const id = await newRun("unlabeled", "--labels", "dev,gpu");
    expect((await show(id)).labels).toEqual(["dev", "gpu"]);
    await agentOnce("dev");
    expect((await show(id)).state).toBe("Scheduled");
    await agentOnce("gpu", "dev", "staging");
    expect((await show(id)).state).toBe("Success");
  });
});
