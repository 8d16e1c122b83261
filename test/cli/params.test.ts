import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { useScaledWorld } from "../../packages/core/test/fixtures/param-world.js";
import { type TernHome, ternHome } from "../support/cli.js";

let t: TernHome;
beforeEach(async () => {
  t = await ternHome();
});
afterEach(() => t.cleanup());
useScaledWorld("default", () => t.home);

describe("tern run --param with declared schemas", () => {
  it("refuses a value its parameter's schema does not accept, naming parameter, value and type; creates nothing", async () => {
    const result = await t.tern(["run", "scaled", "--param", "factor=abc", "--param", "mode=medium"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /parameter "factor" is "abc", expected number; parameter "mode" is "medium", expected one of "fast", "slow"/,
    );
    expect(await t.json(["runs"])).toEqual([]);
  });

  it("reads each value by its declared type: factor=5 is the number 5, label=5 the text", async () => {
    const { id } = await t.json<{ id: string }>([
      "run",
      "scaled",
      "--param",
      "factor=5",
      "--param",
      "label=5",
      "--param",
      "values=[1,2]",
    ]);
    expect(await t.tern(["agent", "--once"])).toMatchObject({ code: 0 });
    const run = await t.json<{ state: string; outputs: Record<string, unknown> }>(["runs", "show", id]);
    expect(run.state).toBe("Success");
    expect(run.outputs).toMatchObject({
      scaled: { kind: "json", value: [5, 10] },
      tagged: { kind: "json", value: "5/-" },
    });
  });
});
