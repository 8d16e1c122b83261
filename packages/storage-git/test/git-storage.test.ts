/**
 * GitStorage against a real Git server (`git http-backend` behind test support's HTTP front) and
 * a bare repository on disk (file://): the BlobStore contract, writers racing from two stores,
 * auth, an unreachable server, and options refused with the fix.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { type BlobStore, sha256Hex, storageFromJSON } from "@tern/core/plugin";
import { blobStoreContract } from "@tern/core/testing";
import { GitStorage } from "@tern/storage-git";
import { type GitServer, startGitServer } from "@tern/test-support/git-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
let server: GitServer;
let repository: string;
let work: string;
let stores = 0;

beforeAll(async () => {
  server = await startGitServer();
  repository = await server.createRepository("flows");
  work = await mkdtemp(join(tmpdir(), "tern-git-storage-"));
  await run("git", ["init", "--quiet", "--bare", join(work, "shared.git")]);
}, 30_000);

afterAll(async () => {
  await server?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** A store with a cache of its own, as another process or machine has. */
const httpStore = (url = repository) => new GitStorage({ url, cacheDirectory: join(work, `cache-${++stores}`) }).blobs;
const put = (store: ReturnType<typeof httpStore>, key: string, text: string) =>
  store.put(key, Buffer.from(text), { sha256: sha256Hex(Buffer.from(text)) });

blobStoreContract("GitBlobStore over HTTP (git http-backend)", () => httpStore(), { timeoutMs: 120_000 });
blobStoreContract(
  "GitBlobStore on a bare repository (file://)",
  () => new GitStorage({ url: pathToFileURL(join(work, "shared.git")).href }).blobs,
  { timeoutMs: 120_000 },
);

describe("GitStorage over HTTP", { timeout: 120_000 }, () => {
  it("writes only to its own branch, one commit per object, which the git CLI reads back", async () => {
    const url = await server.createRepository("own-branch");
    const store = httpStore(url);
    await put(store, "flows/a.json", "{}");
    await put(store, "flows/b.json", "[]");
    expect(await server.git("own-branch", ["for-each-ref", "--format=%(refname)"])).toBe("refs/heads/tern-flows\n");
    expect(await server.git("own-branch", ["log", "--format=%s", "tern-flows"])).toBe(
      "tern: add flows/b.json\ntern: add flows/a.json\n",
    );
    expect(await server.git("own-branch", ["show", "tern-flows:flows/b.json"])).toBe("[]");
  });

  it("lands every write of two stores racing on one branch, overwriting none", async () => {
    const url = await server.createRepository("race");
    const [a, b] = [httpStore(url), httpStore(url)];
    await Promise.all(Array.from({ length: 6 }, (_, i) => put(i % 2 === 0 ? a : b, `flows/race-${i}.json`, `${i}`)));
    expect(await httpStore(url).list("flows/")).toEqual(Array.from({ length: 6 }, (_, i) => `flows/race-${i}.json`));
    expect(await server.git("race", ["rev-list", "--count", "tern-flows"])).toBe("6\n");
  });

  it("lands every write of two stores sharing one cache directory (two processes of one machine)", async () => {
    const url = await server.createRepository("shared-cache");
    const cacheDirectory = join(work, "shared-cache");
    const [a, b] = [0, 1].map(() => new GitStorage({ url, cacheDirectory }).blobs);
    await Promise.all(
      Array.from({ length: 6 }, (_, i) => put((i % 2 === 0 ? a : b) as BlobStore, `flows/s-${i}.json`, `${i}`)),
    );
    expect(await httpStore(url).list("flows/")).toEqual(Array.from({ length: 6 }, (_, i) => `flows/s-${i}.json`));
  });

  it("refuses a key where a directory is, or under a file, dropping nothing", async () => {
    const store = httpStore(await server.createRepository("collide"));
    await put(store, "flows/a/x.json", "{}");
    await put(store, "flows/b", "file");
    await expect(put(store, "flows/a", "{}")).rejects.toMatchObject({ code: "BLOB_CONFLICT" });
    await expect(put(store, "flows/b/y.json", "{}")).rejects.toMatchObject({ code: "BLOB_CONFLICT" });
    expect(await store.list("flows/")).toEqual(["flows/a/x.json", "flows/b"]);
  });

  it("says which option to set when the server asks for credentials, and refuses a wrong token", async () => {
    const locked = await startGitServer({ token: { username: "x-access-token", password: "s3cret-token" } });
    try {
      const url = await locked.createRepository("private");
      await expect(httpStore(url).list("flows/")).rejects.toThrow(
        /asks for credentials \(401\)\. Give GitStorage an auth option, for example auth: \{ tokenEnv: "GIT_TOKEN" \}/,
      );
      process.env.TERN_TEST_GIT_TOKEN = "wrong";
      const wrong = new GitStorage({ url, auth: { tokenEnv: "TERN_TEST_GIT_TOKEN" }, cacheDirectory: join(work, "w") });
      await expect(wrong.blobs.list("flows/")).rejects.toThrow(/refused the token in \$TERN_TEST_GIT_TOKEN \(401\)/);
      process.env.TERN_TEST_GIT_TOKEN = "s3cret-token";
      const right = new GitStorage({ url, auth: { tokenEnv: "TERN_TEST_GIT_TOKEN" }, cacheDirectory: join(work, "r") });
      expect(await put(right.blobs, "flows/p.json", "{}")).toBe("created");
      expect(JSON.stringify(right.toJSON())).not.toContain("s3cret");
      delete process.env.TERN_TEST_GIT_TOKEN;
      await expect(right.blobs.list("flows/")).rejects.toThrow(/TERN_TEST_GIT_TOKEN, which is not set/);
    } finally {
      delete process.env.TERN_TEST_GIT_TOKEN;
      await locked.stop();
    }
  });

  it("says what to do about a repository whose HEAD names a branch that does not exist", async () => {
    const url = await server.createRepository("dangling", "master");
    await put(httpStore(url), "flows/a.json", "{}");
    await expect(httpStore(url).get("flows/a.json")).rejects.toThrow(
      /HEAD names a branch that does not exist.*git symbolic-ref HEAD refs\/heads\/tern-flows/,
    );
  });

  it("names the URL of a server that cannot be reached, as retryable", async () => {
    const down = await startGitServer();
    const url = await down.createRepository("gone");
    await down.stop();
    await expect(httpStore(url).get("flows/x.json")).rejects.toMatchObject({
      code: "STORAGE_UNAVAILABLE",
      retryable: true,
      message: expect.stringContaining(`Git repository ${url} (branch tern-flows)`),
    });
  });

  it("is rebuilt from its JSON, which holds no cache directory", () => {
    const storage = new GitStorage({
      url: repository,
      branch: "flows/tern",
      auth: { tokenEnv: "GITHUB_TOKEN" },
      cacheDirectory: "/x",
    });
    const json = storage.toJSON();
    expect(json).toEqual({
      type: "GitStorage",
      options: { prefix: "flows", url: repository, branch: "flows/tern", auth: { tokenEnv: "GITHUB_TOKEN" } },
    });
    expect(storageFromJSON(json)).toBeInstanceOf(GitStorage);
  });
});

describe("GitStorage on a file:// URL", () => {
  it("refuses a path that is not a bare repository, creating nothing", async () => {
    const missing = join(work, "no-such.git");
    const store = new GitStorage({ url: pathToFileURL(missing).href }).blobs;
    await expect(put(store, "flows/a.json", "{}")).rejects.toThrow(
      /is not a bare Git repository\. Create it with git init --bare/,
    );
    await expect(store.list("flows/")).rejects.toMatchObject({ code: "STORAGE_BUCKET" });
  });
});

describe("GitStorage options", () => {
  it.each([
    ["https://user:ghp_secret@github.com/acme/flows.git", /carries credentials/],
    ["https://github.com/acme/flows.git?token=ghp_secret", /carries credentials/],
    ["ssh://git@github.com/acme/flows.git", /scheme ssh/],
    ["http://git.example.com/acme/flows.git", /use https:\/\//],
    ["not a url", /url is not a URL/],
  ])("refuses url %s without repeating it", (url, message) => {
    let error: Error | undefined;
    try {
      new GitStorage({ url });
    } catch (caught) {
      error = caught as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain("secret");
  });

  it("refuses a bad branch name and an unknown option", () => {
    expect(() => new GitStorage({ url: repository, branch: "../main" })).toThrow(
      /branch "..\/main" is not a valid branch name/,
    );
    expect(() => new GitStorage({ url: repository, brnch: "x" } as never)).toThrow(/unknown option "brnch"/);
  });
});
