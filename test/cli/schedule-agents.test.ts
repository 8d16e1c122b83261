/**
 * Agents polling side by side create each tick's run once, on the embedded default and on
 * DynamoDB Local: two agents poll every half second for a schedule ticking every two seconds, then
 * stop; a third agent started once their runs ahead are long past catches up by each schedule's
 * policy ("latest": one run for the newest missed tick; "all": one per tick).
 */
import type { ChildProcess } from "node:child_process";
import { type DynamoDbLocal, startDynamoDbLocal } from "@tern/test-support/dynamodb-local";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { spawnTern, stopTern, type TernHome, ternHome, waitForOutput } from "../support/cli.js";
import { dynamoDbCliEnv } from "../support/dynamodb-cli.js";

interface RunJson {
  id: string;
  state: string;
  idempotencyKey?: string;
  scheduledAtMs: number;
}

const TICK_MS = 2_000;
let db: DynamoDbLocal | undefined;
let tables = 0;
let t: TernHome;
let env: Record<string, string>;
const agents: ChildProcess[] = [];

afterAll(async () => {
  await db?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The ticks of schedule `name` that have a run, in order, and how many runs each has. */
function ticksOf(runs: readonly RunJson[], name: string): number[] {
  return runs
    .filter((run) => run.idempotencyKey?.startsWith(`schedule:ticking:v1:${name}:`))
    .map((run) => run.scheduledAtMs)
    .sort((a, b) => a - b);
}

/** Where consecutive ticks are further apart than one interval: [before, after] pairs. */
function gaps(ticks: readonly number[]): Array<[number, number]> {
  const found: Array<[number, number]> = [];
  for (let i = 1; i < ticks.length; i++) {
    const [before, after] = [ticks[i - 1] as number, ticks[i] as number];
    if (after - before !== TICK_MS) found.push([before, after]);
  }
  return found;
}

describe.each(["sqlite", "dynamodb"])(
  "a two-second schedule polled by agents on %s",
  { timeout: 150_000 },
  (backend) => {
    beforeAll(async () => {
      if (backend === "dynamodb") db ??= await startDynamoDbLocal();
    }, 60_000);
    beforeEach(async () => {
      t = await ternHome();
      env =
        backend === "dynamodb" && db !== undefined ? await dynamoDbCliEnv(db.endpoint, `tern-ticks-${++tables}`) : {};
      expect((await t.tern(["register", "test/fixtures/schedule-agents.ts"], env)).code).toBe(0);
    });
    afterEach(async () => {
      for (const agent of agents.splice(0)) await stopTern(agent);
      await t.cleanup();
    });

    it("gets one run per tick from two agents, and a late third agent catches up by each policy", async () => {
      for (let i = 0; i < 2; i++) {
        const agent = spawnTern(["agent", "--poll-interval-ms", "500"], { TERN_HOME: t.home, ...env });
        agents.push(agent);
        await waitForOutput(agent, /with no labels/);
      }
      await sleep(10 * TICK_MS);
      for (const agent of agents.splice(0)) expect(await stopTern(agent)).toBe(0);
      const stoppedAtMs = Date.now();

      const before = await t.json<RunJson[]>(["runs", "--limit", "1000"], env);
      for (const name of ["latest", "all"]) {
        const ticks = ticksOf(before, name);
        // One run per tick (the keys are unique by construction, so count the instants), none left out.
        expect(new Set(ticks).size, name).toBe(ticks.length);
        expect(gaps(ticks), name).toEqual([]);
        expect(ticks.filter((tick) => tick <= stoppedAtMs).length, name).toBeGreaterThanOrEqual(8);
      }
      // Every tick that came while both agents polled ran, once.
      const ran = before.filter((run) => run.scheduledAtMs <= stoppedAtMs - 3 * TICK_MS);
      expect(ran.length).toBeGreaterThanOrEqual(10);
      expect(ran.filter((run) => run.state !== "Success")).toEqual([]);

      // The agents created runs up to 10 s ahead (five polls, at least 10 s); a late agent applies
      // the policies to the ticks older than its grace (5 s) that no run covers.
      const lastCovered = Math.max(...ticksOf(before, "latest"));
      await sleep(Math.max(0, lastCovered + 5_000 + 5 * TICK_MS - Date.now()));
      const late = await t.tern(["agent", "--once", "--concurrency", "1", "--json"], env);
      expect(late.code, late.stderr).toBe(0);
      const events = late.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { event: string; message?: string; scheduled?: string[] });
      const skipped = events
        .map((e) =>
          /schedule "latest" of default\/ticking: (\d+) missed tick\(s\) skipped \(catchUp: latest\)/.exec(
            e.message ?? "",
          ),
        )
        .find((match) => match !== null);
      expect(skipped, late.stdout).toBeDefined();

      const after = await t.json<RunJson[]>(["runs", "--limit", "1000"], env);
      const all = ticksOf(after, "all");
      expect(new Set(all).size).toBe(all.length);
      expect(gaps(all)).toEqual([]);
      const latest = ticksOf(after, "latest");
      expect(new Set(latest).size).toBe(latest.length);
      const [gap, ...more] = gaps(latest);
      expect(more).toEqual([]);
      // The gap is what the agent said it skipped: the missed ticks but the newest.
      const [from, to] = gap as [number, number];
      expect(from).toBe(lastCovered);
      expect((to - from) / TICK_MS - 1).toBe(Number(skipped?.[1]));
      expect(Number(skipped?.[1])).toBeGreaterThanOrEqual(3);
      // The late agent created each of those runs once: none of them existed before.
      const created = events.find((e) => e.event === "polled")?.scheduled ?? [];
      expect(created.length).toBe(
        all.length - ticksOf(before, "all").length + latest.length - ticksOf(before, "latest").length,
      );
    });
  },
);
