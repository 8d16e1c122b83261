import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TernHome, ternHome } from "../support/cli.js";

let t: TernHome;
/** Run ids: a failed run with retries, a run that succeeded, and one no agent took yet. */
const ids = { flaky: "", silent: "", waiting: "" };
const runOf = async (flow: string) => (await t.json<{ id: string }>(["run", flow])).id;

beforeAll(async () => {
  t = await ternHome();
  expect((await t.tern(["register", "test/fixtures/quiet-flows.ts"])).code).toBe(0);
  ids.flaky = await runOf("flaky");
  ids.silent = await runOf("silent");
  expect((await t.tern(["agent", "--once"])).code).toBe(0);
  ids.waiting = await runOf("silent");
}, 60_000);
afterAll(() => t.cleanup());

describe("tern logs of a run whose tasks printed nothing", () => {
  it("says so, with the failed task's error and its attempts", async () => {
    const { flaky } = ids;
    const logs = await t.tern(["logs", flaky]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(new RegExp(`^Run ${flaky} \\(Failed: .*\\) has no task output\\.\\n`));
    expect(logs.stdout).toContain(
      "Task runs that failed or were retried:\n  [connect] Failed after 2 attempts: connection refused on attempt 2\n",
    );
    // --json stays a JSON array.
    expect(await t.json(["logs", flaky])).toEqual([]);
  });

  it("says that the tasks succeeded, and what to ask of a run that has not started", async () => {
    const { silent, waiting } = ids;
    expect((await t.tern(["logs", silent])).stdout).toBe(
      `Run ${silent} (Success: 1 task run finished; all reference tasks succeeded) has no task output.\n` +
        "The task run succeeded at the first attempt, printing nothing.\n",
    );
    expect((await t.tern(["logs", waiting])).stdout).toBe(
      `Run ${waiting} (Scheduled) has no task output.\nIt has not started yet: tern why ${waiting.slice(0, 8)}\n`,
    );
  });
});
