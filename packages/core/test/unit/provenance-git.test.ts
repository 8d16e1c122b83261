/** `readGitCheckout` against real temporary Git repositories, with the `git` CLI. */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readGitCheckout } from "../../src/provenance/git.js";

const run = promisify(execFile);
let dir: string;

/** Runs git in `dir` with an identity of its own, so no global configuration is needed. */
async function git(...args: string[]): Promise<string> {
  const { stdout } = await run("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: dir });
  return stdout.trim();
}

beforeEach(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), "tern-provenance-")));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe("readGitCheckout", () => {
  it("has no checkout for a file outside any work tree, or in a repository with no commit yet", async () => {
    await writeFile(join(dir, "etl.ts"), "export {};\n");
    expect(await readGitCheckout(join(dir, "etl.ts"))).toBeUndefined();
    await git("init", "-q");
    expect(await readGitCheckout(join(dir, "etl.ts"))).toBeUndefined();
  });

  it("records HEAD, the path from the root and the origin without the token in its URL", async () => {
    await git("init", "-q");
    await mkdir(join(dir, "flows"));
    await writeFile(join(dir, "flows", "etl.ts"), "export {};\n");
    await writeFile(join(dir, ".gitignore"), "*.log\n");
    await git("add", ".");
    await git("commit", "-q", "-m", "flows");
    await git("remote", "add", "origin", "https://x-access-token:ghp_secret123@github.com/acme/flows.git");
    await writeFile(join(dir, "debug.log"), "ignored files do not count\n");
    const checkout = await readGitCheckout(join(dir, "flows", "etl.ts"));
    expect(checkout).toEqual({
      root: dir,
      changes: [],
      source: {
        repository: "https://github.com/acme/flows.git",
        commit: await git("rev-parse", "HEAD"),
        path: "flows/etl.ts",
        dirty: false,
      },
    });
    expect(JSON.stringify(checkout)).not.toContain("ghp_secret123");
  });

  it("is dirty with a changed tracked file or an untracked one, and lists them", async () => {
    await git("init", "-q");
    await writeFile(join(dir, "etl.ts"), "export {};\n");
    await git("add", ".");
    await git("commit", "-q", "-m", "flow");
    await writeFile(join(dir, "etl.ts"), "export const changed = 1;\n");
    await writeFile(join(dir, "helper.ts"), "export {};\n");
    const checkout = await readGitCheckout(join(dir, "etl.ts"));
    expect(checkout?.source).toEqual({ commit: await git("rev-parse", "HEAD"), path: "etl.ts", dirty: true });
    expect(checkout?.changes).toEqual(["etl.ts", "helper.ts"]);
  });
});
