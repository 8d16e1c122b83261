import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TernHome, ternHome } from "../support/cli.js";

let t: TernHome;
beforeAll(async () => {
  t = await ternHome();
  expect((await t.tern(["register", "test/fixtures/quiet-flows.ts"])).code).toBe(0);
});
afterAll(() => t.cleanup());

describe("commands that take a run id", () => {
  it("accept the 8 characters agents print", async () => {
    const { id } = await t.json<{ id: string }>(["run", "silent"]);
    const short = id.slice(0, 8);
    expect((await t.json<{ id: string }>(["runs", "show", short])).id).toBe(id);
    expect(await t.tern(["logs", short])).toMatchObject({ code: 0 });
    expect((await t.json<{ runId: string }>(["why", short])).runId).toBe(id);
    expect(await t.tern(["cancel", short])).toMatchObject({ code: 0, stdout: `run ${id}: Cancelled\n` });
  });

  it("say which id does not exist, and how to find it", async () => {
    const result = await t.tern(["runs", "show", "0000ffff"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Run 0000ffff does not exist in sqlite:.*tern runs/);
  });
});
