import { LOCAL_REGION, startDynamoDbLocal } from "@tern/test-support/dynamodb-local";
import { beforeAll, describe, expect, it } from "vitest";
import { dynamoDbCliEnv } from "./support/dynamodb-cli.js";
import { useServerAndHome } from "./support/use-server.js";

describe("the CLI and the local agent on DynamoDB Local, through TERN_BACKEND", () => {
  const local = useServerAndHome(startDynamoDbLocal);
  let env: Record<string, string>;
  beforeAll(async () => {
    env = await dynamoDbCliEnv(local.server.endpoint, "tern-cli");
  });

  it("registers, runs through the agent to Success, and shows the run and its logs", async () => {
    const { t } = local;
    const registered = await t.json<Array<{ status: string; version: number }>>(["register", "examples/etl.ts"], env);
    expect(registered).toEqual([expect.objectContaining({ status: "new", version: 1 })]);
    expect((await t.json<Array<{ status: string }>>(["register", "examples/etl.ts"], env))[0]?.status).toBe(
      "unchanged",
    );
    const { id } = await t.json<{ id: string }>(["run", "etl", "--idempotency-key", "evt-1"], env);
    expect((await t.json<{ id: string }>(["run", "etl", "--idempotency-key", "evt-1"], env)).id).toBe(id);
    const agent = await t.tern(["agent", "--once"], env);
    expect(agent.code, agent.stderr).toBe(0);
    const run = await t.json<{
      state: string;
      outputs: Record<string, unknown>;
      taskRuns: Array<{ slug: string; state: string }>;
    }>(["runs", "show", id], env);
    expect(run.state).toBe("Success");
    expect(run.outputs.loaded).toEqual({ kind: "json", value: [10, 20, 30] });
    expect(run.taskRuns.map((r) => [r.slug, r.state])).toEqual([
      ["extract", "Success"],
      ["transform", "Success"],
      ["load", "Success"],
    ]);
    expect((await t.tern(["logs", id], env)).stdout).toContain("Here's your data: 10,20,30");
  });

  it("names the table and how to create it when the table is missing", async () => {
    const { t, server: db } = local;
    const result = await t.tern(["flows"], {
      ...env,
      TERN_BACKEND: `dynamodb://no-such-table?region=${LOCAL_REGION}&endpoint=${encodeURIComponent(db.endpoint)}`,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no-such-table/);
    expect(result.stderr).toMatch(/create-table/);
  });
});
