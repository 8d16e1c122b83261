import { main } from "@tern/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TernHome, ternHome } from "../support/cli.js";

/** Runs `tern` in this process, collecting what it prints. */
async function tern(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (text) => out.push(text), err: (text) => err.push(text) });
  return { code, out: out.join(""), err: err.join("") };
}

describe("argument counts", () => {
  it.each([
    [["register"], "tern register: expected at least 1 argument, got 0 (usage: tern register <files...>"],
    [["run"], "tern run: expected 1 argument, got 0 (usage: tern run <flow>"],
    [["logs", "a", "b"], "tern logs: expected 1 argument, got 2 (usage: tern logs <runId> [--json])"],
    [["execute", "a", "b"], "tern execute: expected 0 or 1 argument, got 2 (usage: tern execute [<runId>]"],
    [["runs", "show", "a", "b"], "tern runs: expected 0 to 2 arguments, got 3 (usage: tern runs "],
  ])("%j says how many it takes, and the usage", async (args, message) => {
    const result = await tern(args);
    expect(result.code).toBe(2);
    expect(result.err).toContain(message);
  });
});

describe("tern register --no-build without a build", () => {
  let t: TernHome;
  beforeAll(async () => {
    t = await ternHome();
  });
  afterAll(() => t.cleanup());

  it("speaks of the flag the user typed", async () => {
    const result = await t.tern(["register", "--no-build", "test/fixtures/quiet-flows.ts"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "tern register --no-build registers builds made beforehand (build: false above). Leave out --no-build to build and register in one step",
    );
  });
});
