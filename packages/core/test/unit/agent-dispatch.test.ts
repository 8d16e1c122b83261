import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Backend, registerEnvironmentType } from "@tern/core/plugin";
import { LocalAgent, SqliteBackend } from "@tern/core/runtime";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { local, RecordingEnvironment, remote } from "../fixtures/dispatch-flows.js";

registerEnvironmentType(RecordingEnvironment.type, () => new RecordingEnvironment());

let dir: string;
let backend: Backend;

beforeEach(async () => {
  RecordingEnvironment.launches = [];
  RecordingEnvironment.maxInFlight = 0;
  dir = await mkdtemp(join(tmpdir(), "tern-dispatch-"));
  process.env.TERN_HOME = dir;
  backend = await SqliteBackend.open({ path: join(dir, "state.db") });
  for (const flow of [remote, local]) await flow.register("p", { backend });
});
afterEach(async () => {
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

const agent = (options: Partial<ConstructorParameters<typeof LocalAgent>[0]> = {}) =>
  new LocalAgent({ backend, runnerCommand: ["tern"], concurrency: 100, ...options });

describe("LocalAgent.dispatch", () => {
  it("claims and launches one given run once, however many dispatchers race for it", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "remote" });
    const results = await Promise.all([agent(), agent(), agent()].map((a) => a.dispatch(run.id)));
    expect(results.filter((r) => r.status === "submitted")).toHaveLength(1);
    expect(results.filter((r) => r.status === "skipped")).toHaveLength(2);
    expect(RecordingEnvironment.launches).toEqual([run.id]);
    expect(await backend.getRun(run.id)).toMatchObject({ state: "Submitted", deployment: { kind: "recorded" } });
    // A poll afterwards finds nothing left to claim.
    expect((await agent().pollOnce()).claimed).toBe(0);
  });

  it("skips runs that are not its own to take, saying why", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "remote", labels: ["gpu"] });
    expect(await agent().dispatch(run.id)).toMatchObject({
      status: "skipped",
      reason: expect.stringMatching(/labels \[gpu\] are not all among this agent's \[\]/),
    });
    const later = await backend.createRun({ project: "p", flow: "remote", scheduledAtMs: Date.now() + 60_000 });
    expect(await agent().dispatch(later.run.id)).toMatchObject({ status: "skipped", reason: "it is not due yet" });
    expect(await agent().dispatch("no-such-run")).toMatchObject({ status: "skipped", reason: "no such run" });
  });

  it("leaves a dispatched run to another agent once its claim expired without a launch", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "remote" });
    // A dispatcher that claimed and then died: its lease is all that is left.
    const stale = await backend.transitionRun({
      runId: run.id,
      expectedRevision: run.revision,
      to: "Scheduled",
      lease: { owner: "dead-agent", expiresAtMs: Date.now() - 1 },
    });
    expect(stale.lease?.owner).toBe("dead-agent");
    const result = await agent().pollOnce();
    expect(result.submitted).toEqual([run.id]);
  });
});

describe("LocalAgent.pollOnce", () => {
  it("claims nothing at or after its deadline", async () => {
    for (let i = 0; i < 3; i++) await backend.createRun({ project: "p", flow: "remote" });
    expect(await agent().pollOnce({ deadlineMs: Date.now() - 1 })).toEqual({
      scheduled: [],
      claimed: 0,
      submitted: [],
      failed: [],
    });
    const runs = await backend.listRuns({ project: "p" });
    expect(runs.every((r) => r.state === "Scheduled" && r.lease === undefined)).toBe(true);
  });

  it("leaves runs of environment types it does not deploy to other agents", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "local" });
    expect(run.environmentType).toBe("LocalEnvironment");
    const fargateOnly = agent({ environmentTypes: ["RecordingEnvironment"] });
    expect(await fargateOnly.pollOnce()).toEqual({ scheduled: [], claimed: 0, submitted: [], failed: [] });
    expect(await fargateOnly.dispatch(run.id)).toMatchObject({
      status: "skipped",
      reason: "it runs on LocalEnvironment, which this agent does not deploy",
    });
    const untouched = await backend.getRun(run.id);
    expect(untouched).toMatchObject({ state: "Scheduled", attempts: 0, revision: run.revision });
    expect(untouched?.lease).toBeUndefined();
  });

  it("deploys up to dispatchConcurrency runs side by side, each once", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await backend.createRun({ project: "p", flow: "remote" })).run.id);
    const result = await agent({ dispatchConcurrency: 4 }).pollOnce();
    expect(result.claimed).toBe(12);
    expect([...result.submitted].sort()).toEqual([...ids].sort());
    expect([...RecordingEnvironment.launches].sort()).toEqual([...ids].sort());
    expect(RecordingEnvironment.maxInFlight).toBe(4);
    const runs = await backend.listRuns({ project: "p" });
    expect(runs.every((r) => r.state === "Submitted")).toBe(true);
  });

  it("counts deploys in flight against concurrency", async () => {
    for (let i = 0; i < 6; i++) await backend.createRun({ project: "p", flow: "remote" });
    const result = await agent({ concurrency: 2, dispatchConcurrency: 8 }).pollOnce();
    expect(result.submitted).toHaveLength(6);
    expect(RecordingEnvironment.maxInFlight).toBe(2);
  });

  it("refuses a dispatchConcurrency that is not a whole number of at least 1", () => {
    expect(() => agent({ dispatchConcurrency: 0 })).toThrow(
      "LocalAgent: dispatchConcurrency must be an integer >= 1, got 0.",
    );
  });
});
