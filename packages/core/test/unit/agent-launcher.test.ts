import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Backend, registerEnvironmentType } from "@tern/core/plugin";
import { SqliteBackend } from "@tern/core/runtime";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Agent } from "../../src/agent/agent.js";
import type { ResolvedRun } from "../../src/agent/deploy.js";
import { deployCustom } from "../../src/agent/deploy-custom.js";
import { type Launcher, RemoteLauncher } from "../../src/agent/launcher.js";
import { LocalLauncher, runnerCommandFromEnv } from "../../src/agent/local-launcher.js";
import { RecordingEnvironment, remote } from "../fixtures/dispatch-flows.js";

registerEnvironmentType(RecordingEnvironment.type, () => new RecordingEnvironment());

let dir: string;
let backend: Backend;

beforeEach(async () => {
  RecordingEnvironment.launches = [];
  dir = await mkdtemp(join(tmpdir(), "tern-launcher-"));
  process.env.TERN_HOME = dir;
  backend = await SqliteBackend.open({ path: join(dir, "state.db") });
  await remote.register("p", { backend });
});
afterEach(async () => {
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

type Exit = { code: number | null; signal: string | null; stderrTail: string };

/** A launcher that starts "processes" the test ends by hand. */
function fakeLauncher(concurrency: number) {
  const seen: Array<{ at: "prepare" | "launch"; state: string }> = [];
  const exits: Array<(exit: Exit) => void> = [];
  const launcher: Launcher = {
    concurrency,
    async prepare(_backend, resolved) {
      seen.push({ at: "prepare", state: resolved.run.state });
      return async (context) => {
        seen.push({ at: "launch", state: context.run.state });
        return { details: { kind: "fake" }, exited: new Promise<Exit>((resolve) => exits.push(resolve)) };
      };
    },
  };
  return { launcher, seen, exits };
}

describe("Agent with an injected launcher", () => {
  it("prepares a claimed run, launches it once Submitted, and keeps to the launcher's concurrency", async () => {
    for (let i = 0; i < 3; i++) await backend.createRun({ project: "p", flow: "remote" });
    const { launcher, seen, exits } = fakeLauncher(2);
    const agent = new Agent({ backend, launcher });
    expect((await agent.pollOnce()).submitted).toHaveLength(2);
    // Workers deploy side by side: each run is prepared while Scheduled, launched once Submitted.
    expect(seen.map((s) => `${s.at} ${s.state}`).sort()).toEqual([
      "launch Submitted",
      "launch Submitted",
      "prepare Scheduled",
      "prepare Scheduled",
    ]);
    expect(agent.activeRuns).toBe(2);
    // Both "processes" still run: the third run waits for room.
    expect((await agent.pollOnce()).claimed).toBe(0);
    // One exits without reporting a final state: its run fails with how it exited.
    exits[0]?.({ code: 3, signal: null, stderrTail: "boom\n" });
    await expect
      .poll(async () => (await backend.listRuns({ project: "p", state: "Failed" })).map((r) => r.reason))
      .toEqual(["the runner exited with code 3 without reporting a final state; its last output: boom"]);
    expect((await agent.pollOnce()).submitted).toHaveLength(1);
    for (const exit of exits.slice(1)) exit({ code: 0, signal: null, stderrTail: "" });
    await agent.stop();
  });

  it("launches remote environments through the RemoteLauncher, with no limit of its own", async () => {
    for (let i = 0; i < 12; i++) await backend.createRun({ project: "p", flow: "remote" });
    const agent = new Agent({ backend, launcher: new RemoteLauncher(), dispatchConcurrency: 4 });
    expect((await agent.pollOnce()).submitted).toHaveLength(12);
    expect(RecordingEnvironment.launches).toHaveLength(12);
    expect(agent.activeRuns).toBe(0);
    await agent.stop();
  });

  it("leaves custom environments to agents that start processes", async () => {
    const resolved = {
      label: '"x" version 1 (project "p")',
      manifest: { environment: { type: "MyOwnEnvironment", options: {}, builtin: false } },
    } as unknown as ResolvedRun;
    await expect(new RemoteLauncher().prepare(backend, resolved)).rejects.toThrow(
      /"MyOwnEnvironment" is a custom environment, .*this agent starts no processes/,
    );
  });

  it("polls again as soon as a slot frees while runs wait, not after the poll interval", async () => {
    for (let i = 0; i < 3; i++) await backend.createRun({ project: "p", flow: "remote" });
    const { launcher, seen, exits } = fakeLauncher(1);
    // An interval far longer than the test may take: only a freed slot can start the next run.
    const agent = new Agent({ backend, launcher, pollIntervalMs: 3_600_000 });
    const launches = () => seen.filter((s) => s.at === "launch").length;
    const loop = agent.start();
    for (let n = 1; n <= 3; n++) {
      await vi.waitFor(() => expect(launches()).toBe(n), { timeout: 10_000, interval: 5 });
      exits[n - 1]?.({ code: 0, signal: null, stderrTail: "" });
    }
    await agent.stop();
    await loop;
    expect(launches()).toBe(3);
  }, 40_000);
});

describe("LocalLauncher", () => {
  it("needs a runner command, given or in TERN_RUNNER_COMMAND", () => {
    expect(new LocalLauncher({ runnerCommand: ["tern"] })).toMatchObject({ concurrency: 4, runnerCommand: ["tern"] });
    const saved = process.env.TERN_RUNNER_COMMAND;
    delete process.env.TERN_RUNNER_COMMAND;
    try {
      expect(() => new LocalLauncher()).toThrow(/LocalAgent needs the command that starts a runner/);
    } finally {
      if (saved !== undefined) process.env.TERN_RUNNER_COMMAND = saved;
    }
    expect(runnerCommandFromEnv({ TERN_RUNNER_COMMAND: '["node","tern.mjs"]' })).toEqual(["node", "tern.mjs"]);
    expect(runnerCommandFromEnv({ TERN_RUNNER_COMMAND: " " })).toEqual([]);
    expect(() => runnerCommandFromEnv({ TERN_RUNNER_COMMAND: "tern" })).toThrow(
      'TERN_RUNNER_COMMAND must be a JSON array of strings (e.g. ["tern"]), got "tern".',
    );
  });

  it("gives a custom environment's deploy process its runner command explicitly", async () => {
    // A "deploy process" that prints, as its deployment, the runner command it was given.
    const script = `console.log(JSON.stringify({ details: { command: process.env.TERN_RUNNER_COMMAND, args: process.argv.slice(1) } }))`;
    const command = [process.execPath, "-e", script];
    const saved = process.env.TERN_RUNNER_COMMAND;
    process.env.TERN_RUNNER_COMMAND = JSON.stringify(["something", "else"]);
    try {
      const deployment = await deployCustom(command, "run-1", {}, () => {});
      expect(deployment.details).toEqual({ command: JSON.stringify(command), args: ["deploy", "run-1"] });
      expect(deployment.exited).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.TERN_RUNNER_COMMAND;
      else process.env.TERN_RUNNER_COMMAND = saved;
    }
  });
});
