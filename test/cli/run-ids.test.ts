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

  it("run a run by its 8 characters with tern execute, which reports as JSON", async () => {
    const { id } = await t.json<{ id: string }>(["run", "silent"]);
    const result = await t.tern(["execute", id.slice(0, 8), "--json"]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ runId: id, state: "Success", reason: expect.any(String) });
    expect((await t.json<{ state: string }>(["runs", "show", id])).state).toBe("Success");
  });

  it("say which id does not exist, and how to find it", async () => {
    const result = await t.tern(["runs", "show", "0000ffff"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Run 0000ffff does not exist in sqlite:.*tern runs/);
  });
});
