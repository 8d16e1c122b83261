/**
 * A flow stored with GitStorage, end to end through the CLI: registered to a branch of a
 * repository served by `git http-backend` that asks for a token, run by the agent with every
 * local cache emptied first, and nothing secret in what was stored.
 */
import { execFile } from "node:child_process";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { type GitServer, startGitServer } from "@tern/test-support/git-server";
import { describe, expect, it } from "vitest";
import { useServerAndHome } from "./support/use-server.js";

const TOKEN = "tern-test-token-never-store-me";
const run = promisify(execFile);

interface RunJson {
  state: string;
  reason?: string;
  outputs: Record<string, unknown>;
}

describe("a flow stored in a Git repository (git http-backend)", { timeout: 120_000 }, () => {
  let url = "";
  const local = useServerAndHome(async (): Promise<GitServer> => {
    const server = await startGitServer({ token: { username: "x-access-token", password: TOKEN } });
    url = await server.createRepository("flows");
    return server;
  });

  it("runs through the agent to Success from a fresh cache, and stores no token", async () => {
    const { t, server } = local;
    const env = { TERN_TEST_GIT_URL: url, TERN_TEST_GIT_TOKEN: TOKEN };
    const registered = await t.tern(["register", "test/fixtures/git-flow.ts", "--json"], env);
    expect(registered.code, registered.stderr).toBe(0);
    expect(JSON.parse(registered.stdout)).toEqual([expect.objectContaining({ name: "git-etl", status: "new" })]);
    const again = await t.json<Array<{ status: string }>>(["register", "test/fixtures/git-flow.ts"], env);
    expect(again[0]?.status).toBe("unchanged");

    const { id } = await t.json<{ id: string }>(["run", "git-etl"], env);
    // Another machine: nothing of the repository or the bundle cached.
    await rm(join(t.home, "cache"), { recursive: true, force: true });
    const agent = await t.tern(["agent", "--once"], env);
    expect(agent.code, agent.stderr).toBe(0);
    const run = await t.json<RunJson>(["runs", "show", id], env);
    expect(run.state, run.reason).toBe("Success");
    expect(run.outputs.total).toEqual({ kind: "json", value: 6 });
    expect(await readdir(join(t.home, "cache", "git"))).toHaveLength(1);

    // The branch holds the manifest and the bundle, which leaves isomorphic-git out (the driver
    // imports it on first I/O, which never happens in a bundle).
    const files = (await server.git("flows", ["ls-tree", "-r", "--name-only", "tern-flows"])).trim().split("\n");
    expect(files.every((f) => f.startsWith("team/flows/"))).toBe(true);
    const bundlePath = files.find((f) => f.endsWith(".mjs")) as string;
    const bundle = await server.git("flows", ["show", `tern-flows:${bundlePath}`]);
    expect(bundle).toMatch(/import\(\s*"isomorphic-git"\s*\)/);
    expect(bundle).not.toContain("GitPackIndex");
    const stored = await Promise.all(files.map((f) => server.git("flows", ["show", `tern-flows:${f}`])));
    stored.push((await readFile(join(t.home, "state.db"))).toString("latin1"));
    for (const text of stored) expect(text).not.toContain(TOKEN);
  });

  it("lands two registrations racing from two processes, each a commit of its own", async () => {
    const { t, server } = local;
    const env = (flow: string) => ({ TERN_TEST_GIT_URL: url, TERN_TEST_GIT_TOKEN: TOKEN, TERN_TEST_GIT_FLOW: flow });
    const results = await Promise.all(
      ["git-race-a", "git-race-b"].map((flow) => t.tern(["register", "test/fixtures/git-flow.ts"], env(flow))),
    );
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    const files = await server.git("flows", ["ls-tree", "-r", "--name-only", "tern-flows"]);
    for (const flow of ["git-race-a", "git-race-b"]) expect(files).toMatch(new RegExp(`team/flows/${flow}/`));
  });

  it("refuses a bundle changed on the branch: the run fails, saying the sha256 does not match", async () => {
    const { t, server } = local;
    const env = { TERN_TEST_GIT_URL: url, TERN_TEST_GIT_TOKEN: TOKEN };
    // Someone with push access rewrites the stored bundle in a commit of their own.
    const files = (await server.git("flows", ["ls-tree", "-r", "--name-only", "tern-flows"])).trim().split("\n");
    const bundlePath = files.find((f) => f.startsWith("team/flows/git-etl/") && f.endsWith(".mjs")) as string;
    const checkout = join(t.home, "checkout");
    await server.git("flows", ["worktree", "add", "--quiet", checkout, "tern-flows"]);
    await writeFile(join(checkout, bundlePath), "console.log('not what was registered');\n");
    await run("git", [
      "-C",
      checkout,
      "-c",
      "user.name=t",
      "-c",
      "user.email=t@t",
      "commit",
      "--quiet",
      "-am",
      "tamper",
    ]);

    const { id } = await t.json<{ id: string }>(["run", "git-etl"], env);
    await rm(join(t.home, "cache"), { recursive: true, force: true });
    await t.tern(["agent", "--once"], env);
    const failed = await t.json<RunJson>(["runs", "show", id], env);
    expect(failed.state).toBe("Failed");
    expect(failed.reason).toMatch(/sha256 mismatch/);
  });

  it("says which option to set when the token is missing", async () => {
    const { t } = local;
    const registered = await t.tern(["register", "test/fixtures/git-flow.ts"], { TERN_TEST_GIT_URL: url });
    expect(registered.code).not.toBe(0);
    expect(registered.stderr).toContain("auth.tokenEnv names TERN_TEST_GIT_TOKEN, which is not set");
  });
});
