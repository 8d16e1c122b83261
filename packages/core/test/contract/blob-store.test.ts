import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TernError } from "@tern/core";
import { LocalBlobStore, MemoryBlobStore, sha256Hex } from "@tern/core/plugin";
import { blobStoreContract } from "@tern/core/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tern-blobs-"));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

blobStoreContract("LocalBlobStore", async () => new LocalBlobStore(join(await tempDir(), "store")));

blobStoreContract("MemoryBlobStore", () => new MemoryBlobStore(`contract-${randomUUID()}`));

/** Every file under `dir`, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe("LocalBlobStore", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await tempDir();
  });

  const bytes = (text: string) => new TextEncoder().encode(text);
  const put = (store: LocalBlobStore, key: string, body: Uint8Array) =>
    store.put(key, body, { sha256: sha256Hex(body) });

  it("stores each object as a file at its key under the directory, with no temporary files left", async () => {
    const store = new LocalBlobStore(join(dir, "store"));
    await put(store, "flows/etl/abc.mjs", bytes("code"));
    await put(store, "flows/etl/abc.mjs", bytes("code"));
    await Promise.all(Array.from({ length: 5 }, () => put(store, "flows/etl/race.json", bytes("{}"))));
    expect(await filesUnder(join(dir, "store"))).toEqual(["flows/etl/abc.mjs", "flows/etl/race.json"]);
    expect(store.url).toBe(`file://${join(dir, "store")}`);
    expect(store.describe("flows/etl/abc.mjs")).toBe(`file://${join(dir, "store", "flows", "etl", "abc.mjs")}`);
  });

  it("leaves no temporary file behind after a conflicting put", async () => {
    const store = new LocalBlobStore(join(dir, "store"));
    await put(store, "k", bytes("one"));
    await expect(put(store, "k", bytes("two"))).rejects.toMatchObject({ code: "BLOB_CONFLICT" });
    expect(await filesUnder(dir)).toEqual(["store/k"]);
  });

  it("fails to write under a regular file with a TernError naming the path and how to fix it, leaving no temporary file", async () => {
    const file = join(dir, "not-a-directory");
    await writeFile(file, "");
    const store = new LocalBlobStore(join(file, "store"));
    const attempt = put(store, "flows/etl/abc.mjs", bytes("code"));
    await expect(attempt).rejects.toThrow(TernError);
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_ACCESS", cause: { code: "ENOTDIR" } });
    await expect(attempt).rejects.toThrow(join(file, "store"));
    await expect(attempt).rejects.toThrow(/not a directory/);
    await expect(attempt).rejects.toThrow(/choose another directory|TERN_HOME/);
    expect(await filesUnder(dir)).toEqual(["not-a-directory"]);
  });

  it("treats objects as missing, not as an access error, when the directory sits under a regular file", async () => {
    const file = join(dir, "not-a-directory");
    await writeFile(file, "");
    const store = new LocalBlobStore(join(file, "store"));
    expect(await store.head("k")).toBeUndefined();
    await expect(store.get("k")).rejects.toMatchObject({ code: "NOT_FOUND", kind: "blob" });
    await expect(store.delete("k")).resolves.toBeUndefined();
  });

  it("fails to list a directory under a regular file with a TernError naming the directory", async () => {
    const file = join(dir, "not-a-directory");
    await writeFile(file, "");
    const store = new LocalBlobStore(join(file, "store"));
    // The prefix is not a valid key on its own: the error must be about the directory, not the prefix.
    const attempt = store.list("");
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_ACCESS" });
    await expect(attempt).rejects.toThrow(join(file, "store"));
  });

  it("returns an empty list when the directory does not exist yet, without creating it", async () => {
    const store = new LocalBlobStore(join(dir, "later"));
    expect(await store.list("")).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it("rejects a put over a directory with a TernError, not a raw file system error", async () => {
    const store = new LocalBlobStore(join(dir, "store"));
    await put(store, "a/b", bytes("nested"));
    const attempt = put(store, "a", bytes("clash"));
    await expect(attempt).rejects.toThrow(TernError);
    await expect(attempt).rejects.toThrow(join(dir, "store", "a"));
    expect(await filesUnder(dir)).toEqual(["store/a/b"]);
  });
});
