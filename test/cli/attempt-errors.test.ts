/** `tern runs show` and `tern logs` print the errors of a retried task's earlier attempts. */
import { join } from "node:path";
import type { SerializedTaskRun } from "@tern/core/plugin";
import { SqliteBackend } from "@tern/core/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TernHome, ternHome } from "../support/cli.js";
import { writeRunsWithLogs } from "../support/state-db.js";

let t: TernHome;
let flaky = "";

beforeAll(async () => {
  t = await ternHome();
  expect((await t.tern(["register", "test/fixtures/quiet-flows.ts"])).code).toBe(0);
  flaky = (await t.json<{ id: string }>(["run", "flaky"])).id;
  expect((await t.tern(["agent", "--once"])).code).toBe(0);
}, 60_000);
afterAll(() => t.cleanup());

describe("a task run that failed after a retry", () => {
  it("runs show prints the earlier attempt's error under the task, and --json carries it", async () => {
    const show = await t.tern(["runs", "show", flaky]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(
      /\n {2}connect +Failed +attempts=2 +connection refused on attempt 2 \(after 2 attempts\)\n {6}attempt 1 failed: connection refused on attempt 1\n/,
    );
    const json = await t.json<{ taskRuns: SerializedTaskRun[] }>(["runs", "show", flaky]);
    expect(json.taskRuns[0]?.attemptErrors).toEqual([
      { attempt: 1, name: "Error", message: "connection refused on attempt 1", timedOut: false },
    ]);
  });

  it("logs of the silent run lists the earlier attempt under the task's error", async () => {
    expect((await t.tern(["logs", flaky])).stdout).toContain(
      "  [connect] Failed after 2 attempts: connection refused on attempt 2\n" +
        "    attempt 1 failed: connection refused on attempt 1\n",
    );
  });
});

/** A stored task run of run `runId` with `extra` fields, as older and newer runners write them. */
const stored = (runId: string, extra: Partial<SerializedTaskRun>): SerializedTaskRun => ({
  id: `${runId}/fetch`,
  slug: "fetch",
  task: "fetch",
  state: "Success",
  attempts: 12,
  logs: [],
  error: { name: "TaskTimeoutError", message: "last retried error" },
  ...extra,
});

describe("stored task runs", () => {
  it.each([
    ["a record written before attempt errors were kept", {}, "fetch  Success  attempts=12\n", "last retried error"],
    [
      "a record whose oldest attempts were dropped",
      {
        attemptErrors: [
          { attempt: 10, name: "TypeError", message: "bad\nsecond line", timedOut: false },
          { attempt: 11, name: "TaskTimeoutError", message: "too slow", timedOut: true },
        ],
      },
      "fetch  Success  attempts=12\n" +
        "      (attempts 1-9: errors not kept)\n" +
        "      attempt 10 failed: TypeError: bad ...\n" +
        "      attempt 11 timed out: TaskTimeoutError: too slow\n",
      "    attempt 11 timed out: TaskTimeoutError: too slow\n",
    ],
  ] as const)("runs show and logs read %s", async (_, extra, shown, logged) => {
    const path = join(t.home, "state.db");
    const [id] = (await writeRunsWithLogs(path, [0], () => ({}) as never)) as [string];
    const backend = await SqliteBackend.open({ path });
    await backend.saveTaskRuns(id, [stored(id, extra)]);
    await backend.close();
    const show = await t.tern(["runs", "show", id]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(`Task runs\n  ${shown}`);
    const logs = await t.tern(["logs", id]);
    expect(logs.stdout).toContain(logged);
  });
});
