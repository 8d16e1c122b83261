/**
 * Provenance: `tern register` from a real Git checkout records the commit, the flow file's path,
 * the origin without its token and whether the checkout was dirty; `tern flows` and `tern runs
 * show` print it; `--require-clean` refuses a dirty checkout and registers nothing.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ROOT, type TernHome, ternHome } from "../support/cli.js";

const run = promisify(execFile);
const ORIGIN = "https://x-access-token:ghp_provenanceSecret@github.com/acme/flows.git";
const REPOSITORY = "https://github.com/acme/flows.git";

interface Source {
  repository?: string;
  commit: string;
  path: string;
  dirty: boolean;
}

let t: TernHome;
let repo: string;
let flowFile: string;

/** Runs git in the repository with an identity of its own, so no global configuration is needed. */
async function git(...args: string[]): Promise<string> {
  const { stdout } = await run("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo });
  return stdout.trim();
}

beforeEach(async () => {
  t = await ternHome();
  // A project of its own, outside the workspace: @tern/core resolves through a link to it.
  repo = await realpath(await mkdtemp(join(tmpdir(), "tern-provenance-repo-")));
  await writeFile(join(repo, "package.json"), '{ "name": "flows", "private": true, "type": "module" }\n');
  await writeFile(join(repo, ".gitignore"), "node_modules/\n");
  await mkdir(join(repo, "node_modules", "@tern"), { recursive: true });
  await symlink(join(ROOT, "packages", "core"), join(repo, "node_modules", "@tern", "core"), "dir");
  await mkdir(join(repo, "flows"));
  flowFile = join(repo, "flows", "etl.ts");
  await copyFile(join(ROOT, "examples", "etl.ts"), flowFile);
  await git("init", "-q");
  await git("add", ".");
  await git("commit", "-q", "-m", "the etl flow");
  await git("remote", "add", "origin", ORIGIN);
});
afterEach(async () => {
  await t.cleanup();
  await rm(repo, { recursive: true, force: true });
});

/** Changes what the flow computes, so that its manifest changes too. */
async function changeFlow(): Promise<void> {
  const text = await readFile(flowFile, "utf8");
  await writeFile(flowFile, text.replace("x * 10", "x * 20"));
}

describe("tern register from a Git checkout", () => {
  it("records the commit and dirty false from a clean checkout, and shows them", async () => {
    const commit = await git("rev-parse", "HEAD");
    const registered = await t.json<Array<{ status: string; source: Source }>>(["register", flowFile]);
    const source = { repository: REPOSITORY, commit, path: "flows/etl.ts", dirty: false };
    expect(registered).toMatchObject([{ status: "new", source }]);

    expect(await t.json(["flows"])).toMatchObject([{ flow: "etl", latestVersion: 1, source }]);
    const flows = await t.tern(["flows"]);
    expect(flows.stdout).toMatch(/SOURCE/);
    expect(flows.stdout).toContain(`${commit.slice(0, 7)} flows/etl.ts`);
    expect(flows.stdout).not.toContain("(dirty)");

    const { id } = await t.json<{ id: string }>(["run", "etl"]);
    expect(await t.json(["runs", "show", id])).toMatchObject({ version: 1, source });
    expect((await t.tern(["runs", "show", id])).stdout).toContain(
      `source      ${commit} flows/etl.ts in ${REPOSITORY}`,
    );

    const everything = [registered, await t.json(["flows"]), await t.json(["runs", "show", id])];
    expect(JSON.stringify(everything)).not.toContain("ghp_provenanceSecret");
  });

  it("records dirty true for a changed flow registered from an uncommitted change", async () => {
    const commit = await git("rev-parse", "HEAD");
    await t.json(["register", flowFile]);
    await changeFlow();
    const registered = await t.json<Array<{ version: number; status: string }>>(["register", flowFile]);
    expect(registered).toMatchObject([
      { version: 2, status: "new", source: { repository: REPOSITORY, commit, path: "flows/etl.ts", dirty: true } },
    ]);
    expect((await t.tern(["flows"])).stdout).toContain(`${commit.slice(0, 7)} flows/etl.ts (dirty)`);
    const { id } = await t.json<{ id: string }>(["run", "etl"]);
    expect((await t.tern(["runs", "show", id])).stdout).toContain(`source      ${commit} flows/etl.ts (dirty) in`);

    // Committed, the same bundle is unchanged: version 2 stays, with the source it was recorded with.
    await git("commit", "-q", "-am", "factor 20");
    expect(await t.json(["register", flowFile, "--require-clean"])).toMatchObject([
      { version: 2, status: "unchanged", source: { commit, dirty: true } },
    ]);
  });

  it("rejects a dirty checkout with --require-clean, registering nothing", async () => {
    await t.json(["register", flowFile]);
    await changeFlow();
    await writeFile(join(repo, "notes.txt"), "untracked files count\n");
    const refused = await t.tern(["register", flowFile, "--require-clean"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `tern register: Flow "etl" (flows/etl.ts): the Git checkout ${repo} has 2 uncommitted changes (flows/etl.ts, notes.txt)`,
    );
    expect(refused.stderr).toMatch(/Commit the changes .* and register again\./);
    expect(refused.stderr).toMatch(/Leave out --require-clean to register from a dirty checkout/);
    expect(await t.json(["flows"])).toMatchObject([{ latestVersion: 1, source: { dirty: false } }]);
  });

  it("registers a flow outside any checkout without a source", async () => {
    await rm(join(repo, ".git"), { recursive: true, force: true });
    const registered = await t.json<Array<Record<string, unknown>>>(["register", flowFile, "--require-clean"]);
    expect(registered).toMatchObject([{ status: "new" }]);
    expect(registered[0]).not.toHaveProperty("source");
    expect((await t.tern(["flows"])).stdout).toMatch(/etl .* -\n/);
  });
});
