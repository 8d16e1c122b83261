import { describe, expect, it } from "vitest";
import type { RunRecord, RunState } from "../backend/types.js";
import { NotFoundError, RunConflictError } from "../errors.js";
import type { ContractContext } from "./backend-contract-context.js";

const LEASE_MS = 60_000;

/** The seeds' label rule: an agent takes a run whose labels it has all of; none only if it has none. */
const LABEL_CASES: ReadonlyArray<{ run: string[]; agent: string[]; claimed: boolean }> = [
  { run: ["dev"], agent: ["dev", "gpu"], claimed: true },
  { run: [], agent: [], claimed: true },
  { run: ["dev"], agent: [], claimed: false },
  { run: [], agent: ["dev"], claimed: false },
  { run: ["dev", "gpu"], agent: ["dev"], claimed: false },
];

const show = (labels: readonly string[]) => `[${labels.join(", ")}]`;

/** Claims, leases and compare-and-swap transitions. Part of `backendContract`. */
export function claimAndTransitionContract(context: () => ContractContext): void {
  /** Registers flow "etl" in the test's project and creates one run per entry of `scheduledAtMs`. */
  async function scheduledRuns(scheduledAtMs: number[], labels: string[] = []): Promise<RunRecord[]> {
    const { backend, version, project } = context();
    await backend.registerFlowVersion(version("etl"));
    const runs: RunRecord[] = [];
    for (const at of scheduledAtMs) {
      runs.push((await backend.createRun({ project, flow: "etl", labels, scheduledAtMs: at })).run);
    }
    return runs;
  }

  describe("claims", () => {
    for (const { run: runLabels, agent, claimed } of LABEL_CASES) {
      it(`${claimed ? "claims" : "does not claim"} a run labelled ${show(runLabels)} for an agent labelled ${show(agent)}`, async () => {
        const { backend } = context();
        const [run] = await scheduledRuns([Date.now() - 1_000], runLabels);
        const got = await backend.claimRuns({ agentId: "agent", labels: agent, limit: 10, leaseMs: LEASE_MS });
        expect(got.map((r) => r.id)).toEqual(claimed ? [run!.id] : []);
      });
    }

    it("records each run's environment type and claims only the types asked for", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("local", { environmentType: "LocalEnvironment" }));
      await backend.registerFlowVersion(version("remote", { environmentType: "FargateTaskEnvironment" }));
      const now = Date.now();
      const { run: local } = await backend.createRun({ project, flow: "local", scheduledAtMs: now - 2_000 });
      const { run: remote } = await backend.createRun({ project, flow: "remote", scheduledAtMs: now - 1_000 });
      expect(local.environmentType).toBe("LocalEnvironment");
      expect((await backend.getRun(remote.id))?.environmentType).toBe("FargateTaskEnvironment");
      const fargate = await backend.claimRuns({
        agentId: "lambda",
        labels: [],
        limit: 10,
        leaseMs: LEASE_MS,
        environmentTypes: ["FargateTaskEnvironment"],
      });
      expect(fargate.map((r) => r.id)).toEqual([remote.id]);
      // The run it passed over is untouched and another agent takes it.
      expect(await backend.getRun(local.id)).toMatchObject({ revision: local.revision, attempts: 0 });
      const any = await backend.claimRuns({ agentId: "local", labels: [], limit: 10, leaseMs: LEASE_MS });
      expect(any.map((r) => r.id)).toEqual([local.id]);
    });

    it("claims matching runs behind many older runs whose labels do not match", async () => {
      const { backend } = context();
      const now = Date.now();
      await scheduledRuns(
        Array.from({ length: 150 }, (_, i) => now - 10_000 + i),
        ["gpu"],
      );
      const [dev] = await scheduledRuns([now - 1_000], ["dev"]);
      const got = await backend.claimRuns({ agentId: "agent", labels: ["dev"], limit: 1, leaseMs: LEASE_MS });
      expect(got.map((r) => r.id)).toEqual([dev!.id]);
    });

    it("claims at most `limit` runs, oldest scheduled first, and leaves future runs alone", async () => {
      const { backend } = context();
      const now = Date.now();
      const [late, future, early, middle] = await scheduledRuns([now - 1_000, now + 30_000, now - 3_000, now - 2_000]);
      const claim = (limit: number, nowMs?: number) =>
        backend.claimRuns({ agentId: "agent", labels: [], limit, leaseMs: LEASE_MS, nowMs });
      expect((await claim(2)).map((r) => r.id)).toEqual([early!.id, middle!.id]);
      expect((await claim(5)).map((r) => r.id)).toEqual([late!.id]);
      expect(await claim(5)).toEqual([]);
      expect((await claim(5, now + 30_000)).map((r) => r.id)).toEqual([future!.id]);
    });

    it("sets the lease and raises attempts and revision of a claimed run", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      const nowMs = Date.now();
      const [claimed] = await backend.claimRuns({ agentId: "agent-1", labels: [], limit: 1, leaseMs: 30_000, nowMs });
      expect(claimed).toMatchObject({
        id: run!.id,
        state: "Scheduled",
        attempts: 1,
        revision: 2,
        lease: { owner: "agent-1", expiresAtMs: nowMs + 30_000 },
      });
      expect(await backend.getRun(run!.id)).toEqual(claimed);
    });

    it("does not hand a run to another agent while its lease lives, and does after it expires", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      const nowMs = Date.now();
      await backend.claimRuns({ agentId: "agent-1", labels: [], limit: 1, leaseMs: 10_000, nowMs });
      const during = await backend.claimRuns({
        agentId: "agent-2",
        labels: [],
        limit: 1,
        leaseMs: 10_000,
        nowMs: nowMs + 9_999,
      });
      expect(during).toEqual([]);
      const after = await backend.claimRuns({
        agentId: "agent-2",
        labels: [],
        limit: 1,
        leaseMs: 10_000,
        nowMs: nowMs + 10_000,
      });
      expect(after).toHaveLength(1);
      expect(after[0]).toMatchObject({
        id: run!.id,
        attempts: 2,
        revision: 3,
        lease: { owner: "agent-2", expiresAtMs: nowMs + 20_000 },
      });
    });

    it("fails a run that lost its lease maxAttempts times instead of claiming it again", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      const t0 = Date.now();
      for (let i = 0; i < 2; i++) {
        const got = await backend.claimRuns({
          agentId: `agent-${i}`,
          labels: [],
          limit: 1,
          leaseMs: 1_000,
          nowMs: t0 + i * 1_000,
          maxAttempts: 2,
        });
        expect(got.map((r) => [r.id, r.attempts])).toEqual([[run!.id, i + 1]]);
      }
      const third = await backend.claimRuns({
        agentId: "agent-2",
        labels: [],
        limit: 1,
        leaseMs: 1_000,
        nowMs: t0 + 2_000,
        maxAttempts: 2,
      });
      expect(third).toEqual([]);
      const failed = await backend.getRun(run!.id);
      expect(failed).toMatchObject({ state: "Failed", attempts: 2 });
      expect(failed?.reason).toMatch(
        /^lost its lease 2 times: the agents that claimed it \(last: agent-1\) stopped or hung/,
      );
      expect(failed).not.toHaveProperty("lease");
      expect((await backend.getRunHistory(run!.id)).map((h) => h.state)).toEqual(["Scheduled", "Failed"]);
    });

    it("does not claim a run that left the Scheduled state", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      await backend.transitionRun({ runId: run!.id, expectedRevision: 1, to: "Submitted" });
      expect(await backend.claimRuns({ agentId: "agent", labels: [], limit: 5, leaseMs: LEASE_MS })).toEqual([]);
    });

    it("never gives one run to two concurrent claimers", async () => {
      const { backend } = context();
      const now = Date.now();
      await scheduledRuns(Array.from({ length: 20 }, (_, i) => now - 1_000 + i));
      const batches = await Promise.all(
        [1, 2, 3, 4].map((n) => backend.claimRuns({ agentId: `agent-${n}`, labels: [], limit: 6, leaseMs: LEASE_MS })),
      );
      const ids = batches.flat().map((r) => r.id);
      expect(ids).toHaveLength(20);
      expect(new Set(ids).size).toBe(20);
    });

    it("gives a run to one of two concurrent claims by the same agent in the same millisecond", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      const nowMs = Date.now();
      // Two of one agent's dispatch workers: same owner, same instant, so the same lease expiry.
      const claims = await Promise.all(
        [1, 2].map(() => backend.claimRuns({ agentId: "agent", labels: [], limit: 1, leaseMs: LEASE_MS, nowMs })),
      );
      expect(claims.flat().map((r) => r.id)).toEqual([run!.id]);
      expect((await backend.getRun(run!.id))?.attempts).toBe(1);
    });
  });

  describe("transitions", () => {
    it("moves a run to a new state, raises its revision and appends to its history", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      const moved = await backend.transitionRun({
        runId: run!.id,
        expectedRevision: 1,
        to: "Submitted",
        reason: "launched",
        deployment: { pid: 42, host: "here" },
      });
      expect(moved).toMatchObject({
        state: "Submitted",
        reason: "launched",
        revision: 2,
        deployment: { pid: 42, host: "here" },
      });
      expect(moved.updatedAtMs).toBeGreaterThanOrEqual(run!.updatedAtMs);
      expect(await backend.getRun(run!.id)).toEqual(moved);
      expect((await backend.getRunHistory(run!.id)).map((h) => h.state)).toEqual(["Scheduled", "Submitted"]);
    });

    it("rejects a write with a stale revision with RunConflictError and leaves the run unchanged", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      await backend.transitionRun({ runId: run!.id, expectedRevision: 1, to: "Submitted" });
      const stale = backend.transitionRun({ runId: run!.id, expectedRevision: 1, to: "Running" });
      await expect(stale).rejects.toThrow(RunConflictError);
      await expect(stale).rejects.toMatchObject({
        code: "RUN_CONFLICT",
        runId: run!.id,
        expectedRevision: 1,
        actualRevision: 2,
      });
      expect(await backend.getRun(run!.id)).toMatchObject({ state: "Submitted", revision: 2 });
    });

    it("rejects a transition of an unknown run with NotFoundError", async () => {
      const { backend } = context();
      const attempt = backend.transitionRun({ runId: "no-such-run", expectedRevision: 1, to: "Running" });
      await expect(attempt).rejects.toThrow(NotFoundError);
      await expect(attempt).rejects.toMatchObject({ kind: "run", id: "no-such-run" });
    });

    for (const terminal of ["Success", "Failed", "Cancelled"] as const) {
      it(`rejects any transition out of ${terminal}`, async () => {
        const { backend } = context();
        const [run] = await scheduledRuns([Date.now() - 1_000]);
        const running = await backend.transitionRun({ runId: run!.id, expectedRevision: 1, to: "Running" });
        const ended = await backend.transitionRun({
          runId: run!.id,
          expectedRevision: running.revision,
          to: terminal,
          reason: "done",
        });
        for (const to of ["Running", "Scheduled", terminal] as const) {
          await expect(
            backend.transitionRun({ runId: run!.id, expectedRevision: ended.revision, to, reason: "again" }),
          ).rejects.toMatchObject({ code: "RUN_TERMINAL" });
        }
        expect(await backend.getRun(run!.id)).toEqual(ended);
      });
    }

    it("rejects Failed and Cancelled without a reason, and accepts Success without one", async () => {
      const { backend } = context();
      const [a, b] = await scheduledRuns([Date.now() - 1_000, Date.now() - 1_000]);
      const attempts: Array<[RunState, string | undefined]> = [
        ["Failed", undefined],
        ["Failed", ""],
        ["Cancelled", "  "],
      ];
      for (const [to, reason] of attempts) {
        await expect(backend.transitionRun({ runId: a!.id, expectedRevision: 1, to, reason })).rejects.toMatchObject({
          code: "REASON_REQUIRED",
        });
      }
      expect(await backend.getRun(a!.id)).toMatchObject({ state: "Scheduled", revision: 1 });
      const running = await backend.transitionRun({
        runId: b!.id,
        expectedRevision: 1,
        to: "Running",
        reason: "started",
      });
      const success = await backend.transitionRun({ runId: b!.id, expectedRevision: running.revision, to: "Success" });
      expect(success.state).toBe("Success");
      expect(success).not.toHaveProperty("reason");
    });

    it("rejects state changes outside the run lifecycle, naming both states", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      await expect(backend.transitionRun({ runId: run!.id, expectedRevision: 1, to: "Success" })).rejects.toMatchObject(
        { code: "RUN_TRANSITION", message: expect.stringMatching(/cannot move from Scheduled to Success/) },
      );
      const running = await backend.transitionRun({ runId: run!.id, expectedRevision: 1, to: "Running", reason: "go" });
      await expect(
        backend.transitionRun({ runId: run!.id, expectedRevision: running.revision, to: "Scheduled" }),
      ).rejects.toMatchObject({ code: "RUN_TRANSITION" });
      await expect(
        backend.transitionRun({ runId: run!.id, expectedRevision: running.revision, to: "Submitted" }),
      ).rejects.toMatchObject({ code: "RUN_TRANSITION" });
      // Writing the same state again patches the run and keeps its reason.
      const patched = await backend.transitionRun({
        runId: run!.id,
        expectedRevision: running.revision,
        to: "Running",
        deployment: { pid: 42 },
      });
      expect(patched).toMatchObject({ state: "Running", reason: "go", deployment: { pid: 42 } });
      expect((await backend.getRunHistory(run!.id)).map((h) => h.state)).toEqual(["Scheduled", "Running"]);
    });

    it("sets the lease when given, keeps it when omitted and clears it with lease: null", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      const lease = { owner: "agent-1", expiresAtMs: Date.now() + 5_000 };
      const leased = await backend.transitionRun({ runId: run!.id, expectedRevision: 1, to: "Submitted", lease });
      expect(leased.lease).toEqual(lease);
      const kept = await backend.transitionRun({ runId: run!.id, expectedRevision: 2, to: "Running" });
      expect(kept.lease).toEqual(lease);
      const cleared = await backend.transitionRun({ runId: run!.id, expectedRevision: 3, to: "Running", lease: null });
      expect(cleared).not.toHaveProperty("lease");
      expect(await backend.getRun(run!.id)).not.toHaveProperty("lease");
    });

    it("stores outputs, keeps deployment when omitted and clears the reason when none is given", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      await backend.transitionRun({
        runId: run!.id,
        expectedRevision: 1,
        to: "Running",
        reason: "started",
        deployment: { arn: "task/1" },
      });
      const outputs = { total: { kind: "json", value: 6 }, gone: { kind: "undefined" } } as const;
      const done = await backend.transitionRun({ runId: run!.id, expectedRevision: 2, to: "Success", outputs });
      expect(done).toMatchObject({ state: "Success", outputs, deployment: { arn: "task/1" } });
      expect(done).not.toHaveProperty("reason");
      expect(await backend.getRun(run!.id)).toEqual(done);
    });

    it("records the history in order with reasons, and no entry when the state does not change", async () => {
      const { backend } = context();
      const [run] = await scheduledRuns([Date.now() - 1_000]);
      const steps: Array<[RunState, string | undefined]> = [
        ["Submitted", "launched"],
        ["Running", undefined],
        ["Running", "heartbeat"],
        ["Cancelling", "user asked"],
        ["Cancelled", "cancelled by alice"],
      ];
      let revision = 1;
      for (const [to, reason] of steps) {
        revision = (await backend.transitionRun({ runId: run!.id, expectedRevision: revision, to, reason })).revision;
      }
      const history = await backend.getRunHistory(run!.id);
      expect(history.map((h) => [h.state, h.reason])).toEqual([
        ["Scheduled", undefined],
        ["Submitted", "launched"],
        ["Running", undefined],
        ["Cancelling", "user asked"],
        ["Cancelled", "cancelled by alice"],
      ]);
      expect(history[2]).not.toHaveProperty("reason");
      const times = history.map((h) => h.atMs);
      expect([...times].sort((x, y) => x - y)).toEqual(times);
      expect(revision).toBe(6);
    });
  });
}
