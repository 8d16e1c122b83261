import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NotFoundError } from "@tern/core";
import type { Backend } from "@tern/core/plugin";
import { explainRun, SqliteBackend } from "@tern/core/runtime";
import { registerTestFlow } from "@tern/test-support/flow-versions";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

let dir: string;
let backend: Backend;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tern-explain-"));
  backend = await SqliteBackend.open({ path: join(dir, "state.db") });
  await registerTestFlow(backend, { labels: ["dev"] });
});
afterEach(async () => {
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

describe("explainRun", () => {
  it("says no agent is running when none polled recently", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "etl" });
    await backend.recordAgent({ id: "old", labels: ["dev"], lastSeenAtMs: Date.now() - 10 * 60_000 });
    const why = await explainRun(backend, run.id);
    expect(why.willBePickedUp).toBe(false);
    expect(why.findings).toEqual([
      expect.stringMatching(/^No agent is running.*tern agent --labels dev\.$/),
      expect.stringMatching(
        /^The last agent to poll, old with labels dev, polled 10 minutes ago \(.*Z\) and has not been seen since; its labels fit: running it again would take this run, which was created after that poll\.$/,
      ),
    ]);
  });

  it("after an agent ran --once, says when it polled and what it would do with the run", async () => {
    const polledAt = Date.now() - 42_000;
    await backend.recordAgent({ id: "once", labels: ["dev"], lastSeenAtMs: polledAt, stoppedAtMs: polledAt });
    const { run } = await backend.createRun({ project: "p", flow: "etl" });
    const why = await explainRun(backend, run.id);
    expect(why.findings[0]).toMatch(/^No agent is running/);
    expect(why.findings[1]).toBe(
      `The last agent to poll, once with labels dev, polled 42 seconds ago (${new Date(polledAt).toISOString()}) and stopped after it (an agent started with --once stops after one poll); its labels fit: running it again would take this run, which was created after that poll.`,
    );
    const { run: gpu } = await backend.createRun({ project: "p", flow: "etl", labels: ["gpu"] });
    expect((await explainRun(backend, gpu.id)).findings[1]).toMatch(
      /; it would not take this run: the run needs labels gpu \(missing: gpu\)\.$/,
    );
  });

  it("says plainly that no live agent takes a run with no labels", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "etl", labels: [] });
    await backend.recordAgent({ id: "a1", labels: ["dev"], lastSeenAtMs: Date.now() });
    expect((await explainRun(backend, run.id)).findings).toEqual([
      "No live agent takes the run: it has no labels, which only an agent with no labels takes. Start one (tern agent), or create the run with labels a live agent has (tern run --labels).",
      "Agent a1 has labels dev; a run with no labels is only picked up by an agent with no labels.",
    ]);
  });

  it("counts an agent whose clock is behind as running when it polls while watched", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "etl" });
    const behind = () => Date.now() - 10 * 60_000;
    await backend.recordAgent({ id: "behind", labels: ["dev"], lastSeenAtMs: behind() });
    // Its next poll lands while `tern why` watches; it still writes its own (old) time.
    const poll = setTimeout(
      () => void backend.recordAgent({ id: "behind", labels: ["dev"], lastSeenAtMs: behind() }),
      50,
    );
    try {
      const why = await explainRun(backend, run.id, { watchMs: 300 });
      expect(why.willBePickedUp).toBe(true);
      expect(why.findings).toEqual(["Agent behind can take the run at the next poll."]);
    } finally {
      clearTimeout(poll);
    }
    // Watched again with no poll: it is not running.
    expect((await explainRun(backend, run.id, { watchMs: 100 })).willBePickedUp).toBe(false);
  });

  it("does not count an agent that stopped", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "etl" });
    const now = Date.now();
    await backend.recordAgent({ id: "gone", labels: ["dev"], lastSeenAtMs: now, stoppedAtMs: now });
    expect((await explainRun(backend, run.id)).findings[0]).toMatch(/^No agent is running/);
  });

  it("names the labels a live agent is missing", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "etl", labels: ["dev", "gpu"] });
    await backend.recordAgent({ id: "a1", labels: ["dev"], lastSeenAtMs: Date.now() });
    const why = await explainRun(backend, run.id);
    expect(why.willBePickedUp).toBe(false);
    expect(why.findings).toEqual([
      expect.stringMatching(/^No live agent's labels fit the run's labels dev, gpu\. .*--labels dev,gpu/),
      "Agent a1 has labels dev; the run needs labels dev, gpu (missing: gpu).",
    ]);
  });

  it("reports a lease held by another agent, and a run scheduled for later", async () => {
    const later = Date.now() + 3_600_000;
    const { run } = await backend.createRun({ project: "p", flow: "etl", scheduledAtMs: later });
    await backend.recordAgent({ id: "a1", labels: ["dev"], lastSeenAtMs: Date.now() });
    let why = await explainRun(backend, run.id);
    expect(why.willBePickedUp).toBe(false);
    expect(why.findings[0]).toBe(
      `The run is scheduled for ${new Date(later).toISOString()}; agents take it from then on.`,
    );

    const { run: due } = await backend.createRun({ project: "p", flow: "etl" });
    const [claimed] = await backend.claimRuns({ agentId: "a1", labels: ["dev"], limit: 1, leaseMs: 60_000 });
    expect(claimed?.id).toBe(due.id);
    why = await explainRun(backend, due.id);
    expect(why.willBePickedUp).toBe(false);
    expect(why.findings[0]).toMatch(/^Agent a1 holds its lease until .* \(attempt 1\)\. If that agent died/);
  });

  it("says which agent will take the run", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "etl" });
    await backend.recordAgent({ id: "a1", labels: ["dev", "staging"], lastSeenAtMs: Date.now() });
    const why = await explainRun(backend, run.id);
    expect(why).toMatchObject({ willBePickedUp: true, findings: ["Agent a1 can take the run at the next poll."] });
  });

  it("explains that a run past Scheduled was already picked up", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "etl" });
    await backend.transitionRun({ runId: run.id, expectedRevision: run.revision, to: "Failed", reason: "boom" });
    expect((await explainRun(backend, run.id)).findings).toEqual([
      "The run is Failed (boom): it is over; only Scheduled runs are picked up.",
    ]);
  });

  it("rejects an unknown run id", async () => {
    await expect(explainRun(backend, "nope")).rejects.toThrow(NotFoundError);
  });
});
