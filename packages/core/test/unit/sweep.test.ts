import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Backend, type RunRecord, SqliteBackend, sweepRuns } from "@tern/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

let dir: string;
let backend: Backend;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tern-sweep-"));
  backend = await SqliteBackend.open({ path: join(dir, "state.db") });
  await backend.registerFlowVersion({
    project: "p",
    flow: "f",
    labels: [],
    storage: { type: "MemoryStorage", options: {} },
    location: "flows/f/x.json",
    manifestHash: "c".repeat(64),
    environmentType: "LocalEnvironment",
  });
});
afterEach(async () => {
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

async function runIn(state: "Submitted" | "Running" | "Cancelling", leaseExpiresAtMs?: number): Promise<RunRecord> {
  let { run } = await backend.createRun({ project: "p", flow: "f" });
  run = await backend.transitionRun({
    runId: run.id,
    expectedRevision: run.revision,
    to: "Submitted",
    reason: "agent",
  });
  if (state === "Submitted") return run;
  const lease = leaseExpiresAtMs === undefined ? null : { owner: "runner:host:42", expiresAtMs: leaseExpiresAtMs };
  run = await backend.transitionRun({
    runId: run.id,
    expectedRevision: run.revision,
    to: "Running",
    reason: "pid 42",
    lease,
  });
  if (state === "Running") return run;
  return backend.transitionRun({ runId: run.id, expectedRevision: run.revision, to: "Cancelling", reason: "asked" });
}

describe("sweepRuns", () => {
  it("fails a Running run whose runner stopped renewing its lease, and leaves live ones alone", async () => {
    const now = Date.now();
    const dead = await runIn("Running", now - 1);
    const alive = await runIn("Running", now + 30_000);
    const swept = await sweepRuns(backend, { nowMs: now });
    expect(swept.map((s) => [s.runId, s.to])).toEqual([[dead.id, "Failed"]]);
    expect(await backend.getRun(dead.id)).toMatchObject({
      state: "Failed",
      reason: expect.stringMatching(
        /^its runner \(host:42\) stopped reporting: its lease expired at .*The process or its host died\.$/,
      ),
    });
    expect((await backend.getRun(dead.id))?.lease).toBeUndefined();
    expect((await backend.getRun(alive.id))?.state).toBe("Running");
  });

  it("ends a Cancelling run whose runner died as Cancelled", async () => {
    const now = Date.now();
    const run = await runIn("Cancelling", now - 1);
    await sweepRuns(backend, { nowMs: now });
    expect((await backend.getRun(run.id))?.state).toBe("Cancelled");
  });

  it("fails a run Submitted longer than the grace period with no runner", async () => {
    const run = await runIn("Submitted");
    expect(await sweepRuns(backend, { nowMs: Date.now() + 1_000, submittedGraceMs: 60_000 })).toEqual([]);
    const swept = await sweepRuns(backend, { nowMs: Date.now() + 61_000, submittedGraceMs: 60_000 });
    expect(swept).toEqual([
      {
        runId: run.id,
        from: "Submitted",
        to: "Failed",
        reason: expect.stringMatching(/no runner started it within 60 s\.$/),
      },
    ]);
  });

  it("leaves a Running run without a runner lease (an older runner, or an environment that reports otherwise)", async () => {
    const run = await runIn("Running");
    expect(await sweepRuns(backend, { nowMs: Date.now() + 3_600_000 })).toEqual([]);
    expect((await backend.getRun(run.id))?.state).toBe("Running");
  });
});
