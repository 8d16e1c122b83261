/**
 * Pre-built storage across processes: `storage.build()` records its builds in the storage, and
 * `register` without building finds them with a new storage object over the same objects, as a
 * later CI step on another machine does.
 */
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Flow, LocalStorage } from "@tern/core";
import { sha256Hex } from "@tern/core/plugin";
import { SqliteBackend } from "@tern/core/runtime";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { scaled } from "../fixtures/two-flows.js";

const home = useTempTernHome("tern-prebuilt-");

/** A storage object over the shared directory: what another process (or machine) builds. */
const shared = () => new LocalStorage({ directory: join(home.path, "shared") });

let backend: SqliteBackend;
beforeEach(async () => {
  backend = await SqliteBackend.open({ path: join(home.path, "state.db") });
});
afterEach(() => backend.close());

/** Builds `scaled` in one storage object and returns another over the same objects. */
async function builtElsewhere() {
  const builder = shared();
  builder.add(scaled);
  const [built] = await builder.build();
  if (built === undefined) throw new Error("build produced nothing");
  return { built, storage: shared() };
}

/** The build records of `scaled`. */
const records = (storage: LocalStorage) => storage.blobs.list("flows/scaled/builds/");

describe("register with build: false from a build made in another process", () => {
  it("registers the recorded build, verified, uploading only the manifest", async () => {
    const { built, storage } = await builtElsewhere();
    expect(storage.built("scaled")).toBeUndefined();
    const result = await scaled.register("proj", { backend, storage, build: false });
    expect(result).toMatchObject({ status: "new", version: 1 });
    expect((await storage.readManifest(result.location)).bundle).toEqual(built.manifest.bundle);
    expect(result.bytesUploaded).toBe((await storage.blobs.get(result.location)).byteLength);
  });

  it("records a build once: building the same source again adds no record", async () => {
    await builtElsewhere();
    const { storage } = await builtElsewhere();
    const keys = await records(storage);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^flows\/scaled\/builds\/\d{8}T\d{9}Z-[0-9a-f]{64}\.json$/);
  });

  it("refuses builds made from other source than the flow's file as it is now", async () => {
    const { storage } = await builtElsewhere();
    // The same flow, its file changed since the build (a later commit in CI).
    const file = join(home.path, "two-flows.ts");
    await copyFile(join(import.meta.dirname, "..", "fixtures", "two-flows.ts"), file);
    await writeFile(file, `${await readFile(file, "utf8")}\n// changed\n`);
    const changed = new Flow("scaled", { module: file });
    const attempt = changed.register("proj", { backend, storage, build: false });
    await expect(attempt).rejects.toMatchObject({ code: "NOT_BUILT" });
    await expect(attempt).rejects.toThrow(`records 1 build of it, but none from ${file} as it is now`);
    expect(await backend.listFlows()).toEqual([]);
  });

  it.each([
    { part: "bundle", tamper: "bundle" as const, message: /bundle sha256 mismatch/ },
    { part: "build record", tamper: "record" as const, message: /does not match the sha256 in its name/ },
  ])("refuses a recorded build whose $part was changed, recording nothing", async ({ tamper, message }) => {
    const { built, storage } = await builtElsewhere();
    const [record] = await records(storage);
    const key = tamper === "bundle" ? built.manifest.bundle.key : (record as string);
    const file = join(home.path, "shared", ...key.split("/"));
    await writeFile(file, `${await readFile(file, "utf8")}\n// changed\n`);
    const attempt = scaled.register("proj", { backend, storage, build: false });
    await expect(attempt).rejects.toMatchObject({ code: "BUNDLE_INTEGRITY" });
    await expect(attempt).rejects.toThrow(message);
    expect(await backend.listFlows()).toEqual([]);
  });

  it("says where it looked when nothing was built", async () => {
    const attempt = scaled.register("proj", { backend, storage: shared(), build: false });
    await expect(attempt).rejects.toMatchObject({ code: "NOT_BUILT" });
    await expect(attempt).rejects.toThrow(/none recorded in file:\/\/.*\/shared\/flows\/scaled\/builds\//);
  });

  it("keeps the record's bytes named by their sha256", async () => {
    const { storage } = await builtElsewhere();
    const [key] = await records(storage);
    expect(key).toContain(sha256Hex(await storage.blobs.get(key as string)));
  });
});
