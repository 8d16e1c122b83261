import { describe, expect, it } from "vitest";
import { useScaledWorld } from "../../../core/test/fixtures/param-world.js";
import { parseRules } from "../../src/rules.js";
import type { Runtime } from "../../src/runtime.js";
import { startRuns } from "../../src/trigger-runs.js";

const backend = useScaledWorld("default");

const rules = parseRules(
  JSON.stringify([
    { name: "scale", flow: "scaled", pattern: { source: ["x"] }, parameters: { factor: "$.data.factor" } },
  ]),
  "test",
);
const runtime = (): Runtime => ({
  backend: backend(),
  agent: {} as Runtime["agent"],
  rules,
  config: {} as Runtime["config"],
});

describe("trigger rules and CloudEvents check the values they pick", () => {
  it("starts no run for a value its parameter's schema refuses, and says which", async () => {
    // Resolves: a refused value is the sender's error, not a passing one to deliver again.
    const [refused] = await startRuns(runtime(), rules, { source: "x", data: { factor: "abc" } }, "ce:1", {
      launch: "handOff",
    });
    expect(refused).toMatchObject({
      rule: "scale",
      dispatch: "error",
      reason: expect.stringMatching(/parameter "factor" is "abc", expected number/),
    });
    expect(await backend().listRuns()).toEqual([]);
  });

  it("starts the run for a value that fits", async () => {
    const [started] = await startRuns(runtime(), rules, { source: "x", data: { factor: 3 } }, "ce:2", {
      launch: "handOff",
    });
    expect(started).toMatchObject({ dispatch: "handedOff", created: true });
    expect((await backend().getRun(started?.runId as string))?.parameters).toEqual({ factor: 3 });
  });
});
