import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runningFromSources, sourceRunnerKey } from "../src/source-runner.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "tern-source-runner-"));
  await mkdir(join(root, "packages", "core", "src", "agent"), { recursive: true });
  await writeFile(join(root, "pnpm-lock.yaml"), "lockfileVersion: '9.0'\n");
  await writeFile(join(root, "packages", "core", "package.json"), '{"name":"@tern/core"}\n');
  await writeFile(join(root, "packages", "core", "src", "agent", "runner.ts"), "export const a = 1;\n");
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe("the build of the CLI from its sources", () => {
  it("is named by its inputs: the same sources give the same build", () => {
    expect(sourceRunnerKey(root)).toBe(sourceRunnerKey(root));
  });

  it.each([
    ["an edited source", "packages/core/src/agent/runner.ts", "export const a = 2;\n"],
    ["a new source", "packages/core/src/agent/lease.ts", "export const b = 1;\n"],
    ["a changed package manifest", "packages/core/package.json", '{"name":"@tern/core","version":"2"}\n'],
    ["a changed lockfile", "pnpm-lock.yaml", "lockfileVersion: '9.1'\n"],
  ])("is rebuilt after %s", async (_what, file, contents) => {
    const before = sourceRunnerKey(root);
    await writeFile(join(root, file), contents);
    expect(sourceRunnerKey(root)).not.toBe(before);
  });

  it("is used when tern runs from its TypeScript sources, as here", () => {
    expect(runningFromSources()).toBe(true);
  });
});
