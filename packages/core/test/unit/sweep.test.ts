import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Backend, type RunRecord, registerDeploymentReconciler } from "@tern/core/plugin";
import { LeaseWatch, SqliteBackend, sweepRuns } from "@tern/core/runtime";
import { registerTestFlow } from "@tern/test-support/flow-versions";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

let dir: string;
let backend: Backend;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tern-sweep-"));
  backend = await SqliteBackend.open({ path: join(dir, "state.db") });
  await registerTestFlow(backend, { flow: "f" });
});
afterEach(async () => {
  mono = 0;
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

/** The sweeping agent's monotonic clock, and its lease watch. */
let mono = 0;
const leaseWatch = new LeaseWatch(60_000, () => mono);

/** Sweeps as an agent would `ms` after the test began: its wall and monotonic clocks both moved. */
function sweepAt(ms: number, options: { submittedGraceMs?: number } = {}) {
  mono = ms;
  return sweepRuns(backend, { nowMs: Date.now() + ms, leaseWatch, ...options });
}

/** Moves `run` on from the revision it holds, as the agent or its runner would. */
const transition = (
  run: RunRecord,
  change: Omit<Parameters<Backend["transitionRun"]>[0], "runId" | "expectedRevision">,
) => backend.transitionRun({ runId: run.id, expectedRevision: run.revision, ...change });

async function runIn(state: "Submitted" | "Running" | "Cancelling", leaseExpiresAtMs?: number): Promise<RunRecord> {
  let { run } = await backend.createRun({ project: "p", flow: "f" });
  run = await transition(run, { to: "Submitted", reason: "agent" });
  if (state === "Submitted") return run;
  const lease = leaseExpiresAtMs === undefined ? null : { owner: "runner:host:42", expiresAtMs: leaseExpiresAtMs };
  run = await transition(run, { to: "Running", reason: "pid 42", lease });
  if (state === "Running") return run;
  return transition(run, { to: "Cancelling", reason: "asked" });
}

describe("sweepRuns", () => {
  it("fails a Running run whose runner stopped renewing its lease, and leaves live ones alone", async () => {
    let mono = 0;
    const leaseWatch = new LeaseWatch(60_000, () => mono);
    const now = Date.now();
    const dead = await runIn("Running", now + 60_000);
    let alive = await runIn("Running", now + 60_000);
    // First sight: every lease counts from now, whatever its expiry says.
    expect(await sweepRuns(backend, { leaseWatch })).toEqual([]);
    mono = 61_000;
    // The live runner renewed meanwhile; the dead one did not.
    alive = await transition(alive, { to: "Running", lease: { owner: "runner:host:42", expiresAtMs: now + 120_000 } });
    const swept = await sweepRuns(backend, { leaseWatch });
    expect(swept.map((s) => [s.runId, s.to])).toEqual([[dead.id, "Failed"]]);
    expect(await backend.getRun(dead.id)).toMatchObject({
      state: "Failed",
      reason:
        "its runner (host:42) stopped renewing its lease: no renewal for 61 s (the lease lasts 60 s). The process or its host died, or was paused.",
    });
    expect((await backend.getRun(dead.id))?.lease).toBeUndefined();
    expect((await backend.getRun(alive.id))?.state).toBe("Running");
  });

  it("believes no clock but its own: an expiry in the past by up to 15 minutes is a skewed clock, not a death", async () => {
    let mono = 0;
    const leaseWatch = new LeaseWatch(60_000, () => mono);
    const now = Date.now();
    // Written by a runner whose clock is 10 minutes behind this observer's.
    const behind = await runIn("Running", now - 10 * 60_000 + 60_000);
    // Written an hour ago by a runner long dead, seen by an observer that just started.
    const longDead = await runIn("Running", now - 60 * 60_000);
    const swept = await sweepRuns(backend, { leaseWatch, nowMs: now });
    expect(swept.map((s) => s.runId)).toEqual([longDead.id]);
    expect(swept[0]?.reason).toMatch(/^its runner \(host:42\) stopped renewing its lease: it expired at /);
    mono = 30_000;
    expect(await sweepRuns(backend, { leaseWatch, nowMs: now + 30_000 })).toEqual([]);
    expect((await backend.getRun(behind.id))?.state).toBe("Running");
  });

  it("ends a Cancelling run whose runner died as Cancelled", async () => {
    let mono = 0;
    const leaseWatch = new LeaseWatch(60_000, () => mono);
    const run = await runIn("Cancelling", Date.now() + 60_000);
    await sweepRuns(backend, { leaseWatch });
    mono = 61_000;
    await sweepRuns(backend, { leaseWatch });
    expect(await backend.getRun(run.id)).toMatchObject({
      state: "Cancelled",
      reason: expect.stringMatching(/^cancelled; its runner \(host:42\) stopped renewing its lease/),
    });
  });

  it("ends the task runs a dead runner left open, with the run's state and reason", async () => {
    const run = await runIn("Running", Date.now() - 60 * 60_000);
    const taskRun = (id: string, state: "Running" | "Pending" | "Success") => ({
      id,
      slug: id,
      task: id,
      state,
      attempts: 1,
      logs: [],
    });
    await backend.saveTaskRuns(run.id, [taskRun("a", "Success"), taskRun("b", "Running"), taskRun("c", "Pending")]);
    await sweepRuns(backend, {});
    const states = (await backend.getTaskRuns(run.id)).map((t) => [t.id, t.state, t.message ?? ""]);
    expect(states).toEqual([
      ["a", "Success", ""],
      ["b", "Failed", expect.stringMatching(/^the run ended: its runner \(host:42\) stopped renewing/)],
      ["c", "Failed", expect.stringMatching(/^the run ended: /)],
    ]);
  });

  it("fails a run Submitted longer than the grace period whose launch was recorded but no runner started", async () => {
    let run = await runIn("Submitted");
    run = await transition(run, { to: "Submitted", deployment: { kind: "process", pid: 42 } });
    expect(await sweepAt(1_000, { submittedGraceMs: 60_000 })).toEqual([]);
    const swept = await sweepAt(61_000, { submittedGraceMs: 60_000 });
    expect(swept).toEqual([
      {
        runId: run.id,
        from: "Submitted",
        to: "Failed",
        reason: expect.stringMatching(/no runner started it within 60 s\.$/),
      },
    ]);
  });

  it("hands a Submitted run whose launch was never recorded back to Scheduled, and fails it after maxAttempts", async () => {
    const run = await runIn("Submitted");
    expect(await sweepAt(1_000, { submittedGraceMs: 60_000 })).toEqual([]);
    const swept = await sweepAt(61_000, { submittedGraceMs: 60_000 });
    expect(swept).toEqual([
      { runId: run.id, from: "Submitted", to: "Scheduled", reason: expect.stringMatching(/handed back/) },
    ]);
    expect(await backend.getRun(run.id)).toMatchObject({ state: "Scheduled" });
    // Claimed and submitted three times in all (claims count attempts), never launched: Failed.
    let at = 61_000;
    for (let i = 0; i < 3; i++) {
      const [claimed] = await backend.claimRuns({ agentId: "a", labels: [], limit: 1, leaseMs: 60_000 });
      expect(claimed?.id).toBe(run.id);
      await backend.transitionRun({
        runId: run.id,
        expectedRevision: claimed!.revision,
        to: "Submitted",
        lease: null,
        // Launch bookkeeping only: nothing was started yet.
        deployment: { kind: "elsewhere", launched: false },
      });
      at += 1_000;
      expect(await sweepAt(at, { submittedGraceMs: 60_000 })).toEqual([]);
      at += 60_000;
      const [again] = await sweepAt(at, { submittedGraceMs: 60_000 });
      expect(again?.to).toBe(i < 2 ? "Scheduled" : "Failed");
    }
    expect(await backend.getRun(run.id)).toMatchObject({
      state: "Failed",
      reason: expect.stringMatching(/after 3 attempts/),
    });
  });

  it("asks a registered reconciler about the runs of its deployment kind, applies its decisions, and applies the generic rules to what it cannot track", async () => {
    const kind = `test-kind-${Math.random()}`;
    const seen: string[][] = [];
    registerDeploymentReconciler(kind, async () => async (runs) => {
      seen.push(runs.map((r) => r.id));
      const decisions = runs
        .filter((r) => r.deployment?.taskArn === "stopped")
        .map((r) => ({ runId: r.id, expectedRevision: r.revision, to: "Failed" as const, reason: "its task stopped" }));
      return { decisions, untracked: runs.filter((r) => r.deployment?.taskArn === undefined).map((r) => r.id) };
    });
    const deploy = async (run: RunRecord, deployment: Record<string, string | boolean>) =>
      transition(run, { to: run.state, deployment });
    const stopped = await deploy(await runIn("Running"), { kind, taskArn: "stopped" });
    const live = await deploy(await runIn("Running", Date.now() - 1), { kind, taskArn: "running" });
    const pending = await deploy(await runIn("Submitted"), { kind, launched: false });
    const swept = [...(await sweepAt(1_000)), ...(await sweepAt(400_000))];
    expect(seen).toHaveLength(2);
    expect(new Set(seen[0])).toEqual(new Set([stopped.id, live.id, pending.id]));
    expect(swept).toEqual(
      expect.arrayContaining([
        { runId: stopped.id, from: "Running", to: "Failed", reason: "its task stopped" },
        { runId: pending.id, from: "Submitted", to: "Scheduled", reason: expect.stringMatching(/handed back/) },
      ]),
    );
    // The tracked live run is the reconciler's: an expired runner lease alone does not end it.
    expect(swept).toHaveLength(2);
    expect((await backend.getRun(live.id))?.state).toBe("Running");
  });

  it("ends a run cancelled before any runner took it, once the grace period passed", async () => {
    let run = await runIn("Submitted");
    run = await transition(run, { to: "Cancelling", reason: "asked" });
    expect(await sweepAt(1_000, { submittedGraceMs: 60_000 })).toEqual([]);
    expect(await sweepAt(61_000, { submittedGraceMs: 60_000 })).toEqual([
      {
        runId: run.id,
        from: "Cancelling",
        to: "Cancelled",
        reason: expect.stringMatching(/before a runner started it/),
      },
    ]);
  });

  it("applies the generic rules to a failing reconciler's runs, keeps sweeping the others, and says so", async () => {
    const kind = `broken-kind-${Math.random()}`;
    registerDeploymentReconciler(kind, async () => async () => {
      throw new Error("ECS is unreachable");
    });
    // Its runner's lease expired long ago: the generic rule ends it even though ECS cannot be asked.
    const tracked = await runIn("Running", Date.now() - 60 * 60_000);
    await transition(tracked, { to: "Running", deployment: { kind, taskArn: "x" } });
    const live = await runIn("Running", Date.now() + 60_000);
    await transition(live, { to: "Running", deployment: { kind, taskArn: "y" } });
    const dead = await runIn("Running", Date.now() - 60 * 60_000);
    const lines: string[] = [];
    const swept = await sweepRuns(backend, { log: (line) => lines.push(line) });
    expect(new Set(swept.map((s) => s.runId))).toEqual(new Set([dead.id, tracked.id]));
    expect(lines).toEqual([expect.stringContaining("ECS is unreachable")]);
  });

  it("runs a decision's afterWrite only when the write landed", async () => {
    const kind = `after-kind-${Math.random()}`;
    const stopped: string[] = [];
    registerDeploymentReconciler(kind, async () => async (runs) => ({
      decisions: runs.map((r) => ({
        runId: r.id,
        expectedRevision: r.deployment?.stale === true ? r.revision - 1 : r.revision,
        to: "Failed" as const,
        reason: "stopped",
        afterWrite: async () => void stopped.push(r.id),
      })),
    }));
    const fresh = await runIn("Running");
    await transition(fresh, { to: "Running", deployment: { kind } });
    const stale = await runIn("Running");
    await transition(stale, { to: "Running", deployment: { kind, stale: true } });
    await sweepRuns(backend);
    expect(stopped).toEqual([fresh.id]);
    expect((await backend.getRun(stale.id))?.state).toBe("Running");
  });

  it("leaves a Running run without a runner lease (an older runner, or an environment that reports otherwise)", async () => {
    const run = await runIn("Running");
    expect(await sweepRuns(backend, { nowMs: Date.now() + 3_600_000 })).toEqual([]);
    expect((await backend.getRun(run.id))?.state).toBe("Running");
  });
});
