import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createTernTable, DynamoDbBackend } from "@tern/backend-dynamodb";
import { collectClaimer } from "@tern/test-support/claimer";
import type { DynamoDbLocal } from "@tern/test-support/dynamodb-local";
import { registerTestFlow } from "@tern/test-support/flow-versions";
import { useDynamoDbLocal } from "@tern/test-support/use-dynamodb-local";
import { describe, expect, it } from "vitest";

let local: DynamoDbLocal;
let client: DynamoDBClient;

useDynamoDbLocal((started, startedClient) => {
  local = started;
  client = startedClient;
});

const fixture = join(import.meta.dirname, "fixtures", "claimer.ts");

/** A table with flow "etl" registered and `count` runs scheduled in the past, created 16 at a time. */
async function tableWithRuns(table: string, count: number): Promise<Set<string>> {
  await createTernTable(client, table);
  const backend = await DynamoDbBackend.open({ table, client });
  try {
    await registerTestFlow(backend);
    const now = Date.now();
    const ids = new Set<string>();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        ids.add((await backend.createRun({ project: "p", flow: "etl", scheduledAtMs: now - 60_000 + i })).run.id);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return ids;
  } finally {
    await backend.close();
  }
}

interface ClaimerResult {
  claimed: string[];
  requests: number;
}

function startClaimers(table: string, agents: string[], leaseMs = 600_000) {
  const children = agents.map((agent) =>
    spawn(
      process.execPath,
      ["--conditions=@tern/source", "--import", "tsx", fixture, local.endpoint, table, agent, String(leaseMs)],
      {
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
      },
    ),
  );
  return { children, outputs: children.map((child) => collectClaimer<ClaimerResult>(child)) };
}

describe("DynamoDbBackend under concurrent claimers in separate processes", () => {
  it("gives each of 1,000 runs to exactly one of 8 claiming processes", async () => {
    const createdAt = Date.now();
    const ids = await tableWithRuns("tern-concurrency", 1_000);
    const createMs = Date.now() - createdAt;
    const { children, outputs } = startClaimers(
      "tern-concurrency",
      Array.from({ length: 8 }, (_, n) => `agent-${n + 1}`),
    );
    try {
      await Promise.all(outputs.map((o) => o.ready));
      const started = Date.now();
      for (const child of children) child.stdin?.write("go\n");
      const results = await Promise.all(outputs.map((o) => o.done));
      const claimed = results.flatMap((r) => r.claimed);
      const requests = results.reduce((sum, r) => sum + r.requests, 0);
      console.log(
        `created 1,000 runs in ${createMs} ms; 8 processes claimed ${claimed.length} in ${Date.now() - started} ms ` +
          `with ${requests} requests ` +
          `(per process: ${results.map((r) => r.claimed.length).join(", ")})`,
      );
      // Otherwise one process did all the work and the test proved nothing about contention.
      expect(results.filter((r) => r.claimed.length > 0).length).toBeGreaterThanOrEqual(4);
      expect(claimed).toHaveLength(1_000);
      expect(new Set(claimed)).toEqual(ids);
      const check = await DynamoDbBackend.open({ table: "tern-concurrency", client });
      try {
        const runs = await check.listRuns({ project: "p", limit: 2_000 });
        expect(runs).toHaveLength(1_000);
        expect(runs.filter((run) => run.attempts !== 1 || run.lease === undefined)).toEqual([]);
      } finally {
        await check.close();
      }
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill();
    }
  }, 120_000);

  it("lets another agent claim the runs of an agent killed in the middle of its claims once their leases expire", async () => {
    const ids = await tableWithRuns("tern-killed-agent", 300);
    const leaseMs = 3_000;
    const { children, outputs } = startClaimers("tern-killed-agent", ["doomed"], leaseMs);
    const [doomed] = children as [ChildProcess];
    const [output] = outputs as [ReturnType<typeof collectClaimer<ClaimerResult>>];
    try {
      await output.ready;
      doomed.stdin?.write("go\n");
      await output.claimedAtLeast(10);
      doomed.kill("SIGKILL");
      await output.done.catch(() => undefined);
    } finally {
      if (doomed.exitCode === null) doomed.kill("SIGKILL");
    }
    const survivor = await DynamoDbBackend.open({ table: "tern-killed-agent", client });
    try {
      const survivorLeaseMs = 600_000;
      const before = await survivor.claimRuns({
        agentId: "survivor",
        labels: [],
        limit: 500,
        leaseMs: survivorLeaseMs,
      });
      const takenByDoomed = ids.size - before.length;
      expect(takenByDoomed).toBeGreaterThanOrEqual(10);
      expect(before.length).toBeGreaterThan(0); // it was killed before it took them all
      expect(before.every((run) => run.attempts === 1)).toBe(true);
      // Nothing more while the dead agent's leases live; all of them once they expire.
      expect(
        await survivor.claimRuns({ agentId: "survivor", labels: [], limit: 500, leaseMs: survivorLeaseMs }),
      ).toEqual([]);
      const after = await survivor.claimRuns({
        agentId: "survivor",
        labels: [],
        limit: 500,
        leaseMs: survivorLeaseMs,
        nowMs: Date.now() + leaseMs,
      });
      expect(after).toHaveLength(takenByDoomed);
      expect(after.every((run) => run.attempts === 2 && run.lease?.owner === "survivor")).toBe(true);
      expect(new Set([...before, ...after].map((run) => run.id))).toEqual(ids);
    } finally {
      await survivor.close();
    }
  }, 60_000);
});
