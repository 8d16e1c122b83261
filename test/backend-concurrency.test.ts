import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Backend } from "@tern/core/plugin";
import { openBackend } from "@tern/core/runtime";
import { registerTestFlow } from "@tern/test-support/flow-versions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./support/cli.js";

const AGENTS = 8;
const RUNS = 1_000;

interface Event {
  agentId: string;
  event: "ready" | "claimed" | "done" | "lost" | "hanging" | "exit";
  id?: string;
  attempts?: number;
}

function startAgent(
  url: string,
  agentId: string,
  extra: string[],
  events: Event[],
): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(
    process.execPath,
    [
      "--conditions=@tern/source",
      "--import",
      "tsx",
      join(ROOT, "test", "fixtures", "agent-process.ts"),
      url,
      agentId,
      ...extra,
    ],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: "" }, stdio: ["pipe", "pipe", "inherit"] },
  );
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const event = JSON.parse(line) as Event;
    events.push(event);
    if (event.event === "ready") markReady();
  });
  return { child, ready };
}

/** Runs 8 agent processes (one of which hangs mid-way and is killed) against one backend URL. */
async function exactlyOnce(url: string, backend: Backend): Promise<void> {
  await registerTestFlow(backend, {
    project: "load",
    flow: "f",
    storage: { type: "MemoryStorage", options: {} },
    location: "flows/f/x.json",
    manifestHash: "b".repeat(64),
    environmentType: "LocalEnvironment",
  });
  const ids: string[] = [];
  for (let i = 0; i < RUNS; i++) ids.push((await backend.createRun({ project: "load", flow: "f" })).run.id);

  const events: Event[] = [];
  const agents = Array.from({ length: AGENTS }, (_, i) =>
    startAgent(url, `agent-${i}`, i === 0 ? ["--hang-after", "15"] : [], events),
  );
  await Promise.all(agents.map((a) => a.ready));
  // The doomed agent starts first, so that it surely claims (and then sits on) some runs; it is
  // killed while the other seven claim concurrently, and its runs come back when the leases expire.
  agents[0]?.child.stdin?.write("go\n");
  const seen = (found: (e: Event) => boolean) =>
    expect.poll(() => events.some(found), { timeout: 30_000, interval: 20 }).toBe(true);
  await seen((e) => e.event === "hanging");
  for (const { child } of agents.slice(1)) child.stdin?.write("go\n");
  await seen((e) => e.event === "claimed" && e.agentId !== "agent-0");
  agents[0]?.child.kill("SIGKILL");
  await Promise.all(
    agents.slice(1).map(({ child }) => new Promise<void>((resolve) => child.once("exit", () => resolve()))),
  );

  const done = events.filter((e) => e.event === "done").map((e) => e.id as string);
  expect(new Set(done).size).toBe(done.length); // no run completed twice
  expect(new Set(done)).toEqual(new Set(ids)); // none lost
  expect(events.filter((e) => e.event === "lost")).toEqual([]); // no claim was stolen mid-way
  // The killed agent's unfinished claims were taken over after their leases expired.
  const abandoned = events.filter((e) => e.agentId === "agent-0" && e.event === "claimed").map((e) => e.id);
  const unfinished = abandoned.filter(
    (id) => !events.some((e) => e.agentId === "agent-0" && e.event === "done" && e.id === id),
  );
  expect(unfinished.length).toBeGreaterThan(0);
  for (const id of unfinished) {
    expect(
      events.some((e) => e.event === "claimed" && e.id === id && e.agentId !== "agent-0" && e.attempts === 2),
    ).toBe(true);
  }
  const states = await Promise.all(ids.map(async (id) => (await backend.getRun(id))?.state));
  expect(states.every((s) => s === "Success")).toBe(true); // none stuck
  expect(new Set(events.filter((e) => e.event === "done").map((e) => e.agentId)).size).toBeGreaterThan(1);
}

describe("8 agent processes claiming 1,000 runs, one killed mid-way", () => {
  describe("on SQLite", () => {
    let dir: string;
    let backend: Backend;
    let url: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "tern-concurrency-"));
      url = `sqlite://${join(dir, "state.db")}`;
      backend = await openBackend(url);
    });
    afterAll(async () => {
      await backend?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("completes every run exactly once, and the killed agent's runs after their leases expire", async () => {
      await exactlyOnce(url, backend);
    }, 120_000);
  });
});
