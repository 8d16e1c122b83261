import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TernHome, ternHome } from "../support/cli.js";

let t: TernHome;
beforeAll(async () => {
  t = await ternHome();
});
afterAll(() => t.cleanup());

describe("a custom environment's own error", () => {
  beforeAll(async () => {
    expect((await t.tern(["register", "test/fixtures/failing-environment.ts"])).code).toBe(0);
  });

  it.each([
    { failIn: "setup", reason: "FailingEnvironment.setup threw TypeError: the cluster name must be a string" },
    { failIn: "execute", reason: "FailingEnvironment.execute threw QuotaExceeded: no capacity left in the pool" },
    { failIn: "value", reason: 'FailingEnvironment.execute threw a non-error value, "no capacity"' },
  ])("is the run's reason, with its type, when it is thrown in $failIn", async ({ failIn, reason }) => {
    const { id } = await t.json<{ id: string }>(["run", "failing-environment"]);
    const agent = await t.tern(["agent", "--once"], { TERN_TEST_FAIL_IN: failIn });
    // What the environment printed reaches the agent's log, not the reason.
    expect(agent.stderr).toContain("| checking the cluster");
    const run = await t.json<{ state: string; reason: string }>(["runs", "show", id]);
    expect(run).toMatchObject({ state: "Failed", reason: `deploy failed: ${reason}` });
  });
});

describe("a custom environment's dependencies", () => {
  it("are checked at registration when declared with `get dependencies()`", async () => {
    const result = await t.tern(["register", "test/fixtures/getter-dependency.ts"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /Flow "warehouse": dependency "tern-test-package-not-installed" of its environment does not resolve from .*test\/fixtures\. Install it/,
    );
  });
});
