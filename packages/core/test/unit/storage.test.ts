import { randomUUID } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Flow, LocalStorage, MemoryStorage, NotFoundError, type Storage, TernError, task } from "@tern/core";
import {
  type BlobStore,
  BundleError,
  BundleIntegrityError,
  type Manifest,
  ManifestError,
  MemoryBlobStore,
  registerStorageType,
  sha256Hex,
  storageFromJSON,
} from "@tern/core/plugin";
import { SqliteBackend } from "@tern/core/runtime";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { needsPackage } from "../fixtures/missing-dependency.js";
import { withStorage } from "../fixtures/own-storage.js";
import { first as twinFirst } from "../fixtures/same-name.js";
import { greeting, scaled } from "../fixtures/two-flows.js";

const fixtures = join(import.meta.dirname, "..", "fixtures");
const TWO_FLOWS = join(fixtures, "two-flows.ts");

const home = useTempTernHome("tern-storage-");

const uniqueName = () => `test-${randomUUID()}`;
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The storages under test, each fresh per call: objects in memory, or on disk under TERN_HOME. */
const storages: Array<{ name: string; create: () => Storage; tamper: (s: Storage, key: string) => Promise<void> }> = [
  {
    name: "MemoryStorage",
    create: () => new MemoryStorage({ name: uniqueName() }),
    tamper: async (storage, key) => {
      const body = new TextEncoder().encode(`${text(await storage.blobs.get(key))}\n// changed\n`);
      await storage.blobs.delete(key);
      await storage.blobs.put(key, body, { sha256: sha256Hex(body) });
    },
  },
  {
    name: "LocalStorage",
    create: () => new LocalStorage({ directory: join(home.path, "store") }),
    tamper: async (_storage, key) => {
      const file = join(home.path, "store", ...key.split("/"));
      await writeFile(file, `${await readFile(file, "utf8")}\n// changed\n`);
    },
  },
];

/** The objects of a storage besides its build records (`prebuilt.test.ts` tests those). */
const flowObjects = async (storage: Storage) =>
  (await storage.blobs.list("")).filter((key) => !key.includes("/builds/"));

/** Builds `flow` into `storage` and stores its manifest. */
async function buildAndStore(storage: Storage, flow: Flow) {
  storage.add(flow);
  const [built] = await storage.build({ only: [flow.name] });
  if (built === undefined) throw new Error(`build produced nothing for ${flow.name}`);
  const stored = await storage.writeManifest(built.manifest);
  return { built, stored };
}

for (const { name, create, tamper } of storages) {
  describe(name, () => {
    it("contains a flow once it is added", () => {
      const storage = create();
      expect(storage.contains("scaled")).toBe(false);
      expect(storage.add(scaled)).toBe("scaled");
      expect(storage.contains("scaled")).toBe(true);
      expect(storage.contains("greeting")).toBe(false);
      expect(storage.flowNames).toEqual(["scaled"]);
    });

    it("rejects another flow under a name it already holds", () => {
      const storage = create();
      storage.add(scaled);
      expect(storage.add(scaled)).toBe("scaled");
      const impostor = new Flow("scaled", { module: TWO_FLOWS });
      expect(() => storage.add(impostor)).toThrow(/already holds another flow named "scaled"/);
    });

    it("uploads the bundle on the first build and nothing on the second", async () => {
      const storage = create();
      storage.add(scaled);
      const [first] = await storage.build();
      expect(first?.name).toBe("scaled");
      expect(first?.bytesUploaded).toBeGreaterThan(0);
      const key = first!.manifest.bundle.key;
      expect(key).toBe(`flows/scaled/${first!.manifest.bundle.sha256}.mjs`);
      const stored = await storage.blobs.get(key);
      expect(first?.bytesUploaded).toBe(stored.byteLength);
      expect(first?.manifest.bundle.sizeBytes).toBe(stored.byteLength);
      expect(sha256Hex(stored)).toBe(first!.manifest.bundle.sha256);

      const [second] = await storage.build();
      expect(second?.bytesUploaded).toBe(0);
      expect(second?.manifest.bundle).toEqual(first!.manifest.bundle);
      expect(await flowObjects(storage)).toEqual([key]);
    });

    it("builds several flows of one module from one bundle into one storage", async () => {
      const storage = create();
      storage.add(scaled);
      storage.add(greeting);
      const built = await storage.build();
      expect(built.map((b) => b.name).sort()).toEqual(["greeting", "scaled"]);
      const [a, b] = built;
      expect(a?.manifest.bundle.sha256).toBe(b?.manifest.bundle.sha256);
      expect(built.map((f) => f.manifest.exportName).sort()).toEqual(["greeting", "scaled"]);
      expect(await flowObjects(storage)).toEqual(built.map((f) => f.manifest.bundle.key).sort());
      expect(storage.built("greeting")?.manifest.flow.tasks.map((t) => t.task)).toEqual(["greet"]);
      expect(storage.built("scaled")?.manifest.flow.parameters).toEqual([
        { name: "factor", required: false, default: 10 },
      ]);
    });

    it("builds only the flows named in `only`", async () => {
      const storage = create();
      storage.add(scaled);
      storage.add(greeting);
      const built = await storage.build({ only: ["greeting"] });
      expect(built.map((b) => b.name)).toEqual(["greeting"]);
      expect(storage.built("scaled")).toBeUndefined();
      expect(await storage.blobs.list("flows/scaled/")).toEqual([]);
    });

    it("stores a manifest content-addressed: the same manifest goes to the same place, uploaded once", async () => {
      const storage = create();
      const { built, stored } = await buildAndStore(storage, scaled);
      expect(stored.bytesUploaded).toBeGreaterThan(0);
      expect(stored.location).toBe(`flows/scaled/${stored.hash}.json`);
      expect(sha256Hex(await storage.blobs.get(stored.location))).toBe(stored.hash);

      const again = await storage.writeManifest(built.manifest);
      expect(again).toEqual({ location: stored.location, hash: stored.hash, bytesUploaded: 0 });

      const relabelled = await storage.writeManifest({ ...built.manifest, labels: ["dev"] });
      expect(relabelled.location).not.toBe(stored.location);
      expect(relabelled.bytesUploaded).toBeGreaterThan(0);
    });

    it("reads back the manifest it wrote", async () => {
      const storage = create();
      const { built, stored } = await buildAndStore(storage, scaled);
      const manifest = await storage.readManifest(stored.location, { expectedHash: stored.hash });
      expect(manifest).toEqual(built.manifest);
      expect(manifest.storage).toEqual(storage.toJSON());
      expect(manifest.environment).toMatchObject({ type: "LocalEnvironment", builtin: true });
      expect(manifest.flow.description).toBe("scales a list");
    });

    it("rejects a stored manifest that fails the schema with a ManifestError naming the field", async () => {
      const storage = create();
      const { built } = await buildAndStore(storage, scaled);
      const bad = { ...built.manifest, bundle: { ...built.manifest.bundle, sha256: "not-a-hash" } };
      const bytes = new TextEncoder().encode(JSON.stringify(bad));
      await storage.blobs.put("flows/scaled/bad.json", bytes, { sha256: sha256Hex(bytes) });
      const attempt = storage.readManifest("flows/scaled/bad.json");
      await expect(attempt).rejects.toThrow(ManifestError);
      await expect(attempt).rejects.toThrow(/bundle\.sha256/);
      await expect(attempt).rejects.toThrow(storage.blobs.describe("flows/scaled/bad.json"));

      const { exportName: _dropped, ...missingField } = built.manifest;
      const missingBytes = new TextEncoder().encode(JSON.stringify(missingField));
      await storage.blobs.put("flows/scaled/missing.json", missingBytes, { sha256: sha256Hex(missingBytes) });
      await expect(storage.readManifest("flows/scaled/missing.json")).rejects.toThrow(/exportName/);
    });

    it("rejects a stored manifest that is not JSON with a ManifestError", async () => {
      const storage = create();
      const bytes = new TextEncoder().encode("{ not json");
      await storage.blobs.put("flows/x/garbage.json", bytes, { sha256: sha256Hex(bytes) });
      await expect(storage.readManifest("flows/x/garbage.json")).rejects.toThrow(
        /Manifest .*garbage\.json is not valid JSON/,
      );
    });

    it("rejects writing a manifest that fails the schema, and writes nothing", async () => {
      const storage = create();
      const { built } = await buildAndStore(storage, scaled);
      const before = await storage.blobs.list("");
      const bad = { ...built.manifest, labels: [" dev"] } as Manifest;
      await expect(storage.writeManifest(bad)).rejects.toThrow(/labels\.0/);
      expect(await storage.blobs.list("")).toEqual(before);
    });

    it("loads a flow whose run works", async () => {
      const storage = create();
      const { stored } = await buildAndStore(storage, scaled);
      const loaded = await storage.load(stored.location, { expectedHash: stored.hash });
      expect(loaded.flow.name).toBe("scaled");
      expect(loaded.flow).not.toBe(scaled); // the bundle's own copy, not the test's module
      expect(loaded.manifest.flow.name).toBe("scaled");
      const run = await loaded.flow.run({ parameters: { factor: 3 } });
      expect(run.state).toBe("Success");
      expect(run.outputs).toEqual({ scaled: [3, 6, 9] });
    });

    it("loads flows that share a bundle concurrently into an empty cache", async () => {
      const storage = create();
      storage.add(scaled);
      storage.add(greeting);
      const built = await storage.build();
      const stored = await Promise.all(built.map((b) => storage.writeManifest(b.manifest)));
      const cacheDir = join(home.path, "fresh-cache");
      const loaded = await Promise.all([...stored, ...stored].map((m) => storage.load(m.location, { cacheDir })));
      expect(loaded.map((l) => l.flow.name).sort()).toEqual(["greeting", "greeting", "scaled", "scaled"]);
      expect((await readdir(cacheDir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    });

    it("refuses a bundle changed after the build with a BundleIntegrityError giving both hashes", async () => {
      const storage = create();
      const { built, stored } = await buildAndStore(storage, scaled);
      await tamper(storage, built.manifest.bundle.key);
      const actual = sha256Hex(await storage.blobs.get(built.manifest.bundle.key));
      const attempt = storage.load(stored.location, { label: '"scaled" version 3' });
      await expect(attempt).rejects.toThrow(BundleIntegrityError);
      await expect(attempt).rejects.toMatchObject({ code: "BUNDLE_INTEGRITY" });
      await expect(attempt).rejects.toThrow(built.manifest.bundle.sha256);
      await expect(attempt).rejects.toThrow(actual);
      await expect(attempt).rejects.toThrow(/register the flow again/);
      await expect(attempt).rejects.toThrow(/Flow "scaled" version 3/);
    });

    it("refuses a manifest whose hash is not the expected one", async () => {
      const storage = create();
      const { stored } = await buildAndStore(storage, scaled);
      const expected = "0".repeat(64);
      const attempt = storage.load(stored.location, { expectedHash: expected });
      await expect(attempt).rejects.toThrow(BundleIntegrityError);
      await expect(attempt).rejects.toThrow(expected);
      await expect(attempt).rejects.toThrow(stored.hash);
      await expect(attempt).rejects.toThrow(/register the flow again/);
    });

    it("reports a deleted bundle as a NotFoundError that mentions lifecycle rules", async () => {
      const storage = create();
      const { built, stored } = await buildAndStore(storage, scaled);
      await storage.blobs.delete(built.manifest.bundle.key);
      const attempt = storage.load(stored.location);
      await expect(attempt).rejects.toThrow(NotFoundError);
      await expect(attempt).rejects.toMatchObject({ kind: "blob", id: built.manifest.bundle.key });
      await expect(attempt).rejects.toThrow(/its bundle .* is missing from storage/);
      await expect(attempt).rejects.toThrow(/lifecycle/);
    });

    it("reports a deleted manifest as a NotFoundError that mentions lifecycle rules", async () => {
      const storage = create();
      const { stored } = await buildAndStore(storage, scaled);
      await storage.blobs.delete(stored.location);
      const attempt = storage.load(stored.location);
      await expect(attempt).rejects.toMatchObject({ code: "NOT_FOUND", kind: "blob", id: stored.location });
      await expect(attempt).rejects.toThrow(/its manifest .* is missing from storage.*lifecycle/s);
    });

    it("is rebuilt from its JSON by storageFromJSON, and the copy loads what the original stored", async () => {
      const storage = create();
      const { stored } = await buildAndStore(storage, scaled);
      const json = JSON.parse(JSON.stringify(storage.toJSON())) as ReturnType<Storage["toJSON"]>;
      const copy = storageFromJSON(json);
      expect(copy).toBeInstanceOf(storage.constructor);
      expect(copy.toJSON()).toEqual(storage.toJSON());
      const loaded = await copy.load(stored.location, { expectedHash: stored.hash });
      expect((await loaded.flow.run()).outputs).toEqual({ scaled: [10, 20, 30] });
    });
  });
}

describe("storage JSON and options", () => {
  it("gives LocalStorage's JSON as type and options, with an absolute directory and nothing else", () => {
    const storage = new LocalStorage({ directory: "relative/dir", prefix: "team/flows", external: ["pg"] });
    expect(storage.toJSON()).toEqual({
      type: "LocalStorage",
      options: { prefix: "team/flows", directory: join(process.cwd(), "relative/dir"), external: ["pg"] },
    });
    expect(new LocalStorage().toJSON()).toEqual({ type: "LocalStorage", options: { prefix: "flows" } });
  });

  it("gives MemoryStorage's JSON as type and options with its name", () => {
    expect(new MemoryStorage({ name: "n" }).toJSON()).toEqual({
      type: "MemoryStorage",
      options: { prefix: "flows", name: "n" },
    });
  });

  it("puts a LocalStorage without a directory under TERN_HOME when first used", async () => {
    const storage = new LocalStorage();
    const { built } = await buildAndStore(storage, scaled);
    const file = join(home.path, "storage", ...built.manifest.bundle.key.split("/"));
    expect(sha256Hex(await readFile(file))).toBe(built.manifest.bundle.sha256);
  });

  it("writes every key under the storage's prefix", async () => {
    const storage = new MemoryStorage({ name: uniqueName(), prefix: "team-a/flows" });
    const { stored } = await buildAndStore(storage, scaled);
    const keys = await storage.blobs.list("");
    expect(keys).toHaveLength(3); // the bundle, the manifest, the build record
    expect(keys.every((k) => k.startsWith("team-a/flows/scaled/"))).toBe(true);
    expect(stored.location.startsWith("team-a/flows/scaled/")).toBe(true);
  });

  it("asks a store that compares by checksum instead of downloading, and replaces an object it finds different", async () => {
    const inner = new MemoryBlobStore(uniqueName());
    const calls: string[] = [];
    let answer: "same" | "different" = "same";
    const store: BlobStore = {
      url: inner.url,
      describe: (key) => inner.describe(key),
      put: (key, body, options) => inner.put(key, body, options),
      get: (key) => {
        calls.push("get");
        return inner.get(key);
      },
      head: (key) => inner.head(key),
      list: (prefix) => inner.list(prefix),
      delete: (key) => {
        calls.push("delete");
        return inner.delete(key);
      },
      compareStored: async (key) => {
        calls.push("compare");
        return (await inner.head(key)) === undefined ? "absent" : answer;
      },
    };
    class CheckedStorage extends MemoryStorage {
      protected override createBlobStore(): BlobStore {
        return store;
      }
    }
    const storage = new CheckedStorage({ name: uniqueName() });
    storage.add(greeting);
    // plan() and upload(): build() also reads and writes build records, which are not the point here.
    const upload = async () => (await storage.upload(await storage.plan()))[0]?.bytesUploaded;
    expect(await upload()).toBeGreaterThan(0);
    expect(await upload()).toBe(0);
    answer = "different";
    expect(await upload()).toBeGreaterThan(0);
    expect(calls).toEqual(["compare", "compare", "compare", "delete"]);
  });

  it("lets a subclass declare its own type and be rebuilt from JSON once registered", async () => {
    class TeamStorage extends LocalStorage {
      static override readonly type = "TeamStorage";
    }
    const factory = (options: Record<string, unknown>) => new TeamStorage(options);
    registerStorageType("TeamStorage", factory);
    const storage = new TeamStorage({ directory: join(home.path, "team") });
    expect(storage.toJSON()).toEqual({
      type: "TeamStorage",
      options: { prefix: "flows", directory: join(home.path, "team") },
    });
    const { stored } = await buildAndStore(storage, greeting);
    expect((await storageFromJSON(storage.toJSON()).readManifest(stored.location)).storage.type).toBe("TeamStorage");
    expect(() => registerStorageType("TeamStorage", (o) => new TeamStorage(o))).toThrow(
      'Storage type "TeamStorage" is already registered; choose another name.',
    );
  });

  it("rejects an unknown storage type with an error listing the known types", () => {
    expect(() => storageFromJSON({ type: "TapeStorage", options: {} })).toThrow(
      /Unknown storage type "TapeStorage"\. This process knows: .*LocalStorage.*MemoryStorage/,
    );
    expect(() => storageFromJSON({ type: "TapeStorage", options: {} })).toThrow(
      expect.objectContaining({ code: "STORAGE_TYPE" }),
    );
  });

  for (const prefix of ["", "/abs", "a/../b", "a//b", "trailing/", "back\\slash", "spa ce", ".."]) {
    it(`rejects the prefix ${JSON.stringify(prefix)} naming it`, () => {
      const attempt = () => new MemoryStorage({ prefix });
      expect(attempt).toThrow(TernError);
      expect(attempt).toThrow(expect.objectContaining({ code: "STORAGE_OPTIONS" }));
      expect(attempt).toThrow(`prefix ${JSON.stringify(prefix)} is not a valid key prefix`);
    });
  }
});

describe("bundling errors", () => {
  /** Builds a flow that claims to be defined in `file`; asserts a BundleError and an untouched storage. */
  async function expectBundleError(file: string, flow = new Flow("probe", { module: file })): Promise<BundleError> {
    const storage = new MemoryStorage({ name: uniqueName() });
    storage.add(flow);
    const error = await storage.build().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BundleError);
    expect(error).toMatchObject({ code: "BUNDLE" });
    expect(await storage.blobs.list("")).toEqual([]);
    expect(storage.built(flow.name)).toBeUndefined();
    return error as BundleError;
  }

  it.each([
    { what: "a missing flow file", name: "does-not-exist.ts", reason: /does not exist/ },
    { what: "a file that exports no flow", name: "no-flow.ts", reason: /exports no flow/ },
  ])("rejects $what, naming it", async ({ name, reason }) => {
    const file = join(fixtures, name);
    const error = await expectBundleError(file);
    expect(error.message).toContain(file);
    expect(error.message).toMatch(reason);
  });

  it("rejects a file with a syntax error, naming the file and the line", async () => {
    const file = join(fixtures, "broken", "syntax-error.ts");
    const error = await expectBundleError(file);
    expect(error.message).toContain("syntax-error.ts");
    expect(error.message).toMatch(/syntax-error\.ts:5:\d+/);
    expect(error.message).toContain("const value = = 1;");
  });

  it("rejects a file exporting two flows with one name, naming both exports", async () => {
    const error = await expectBundleError(join(fixtures, "same-name.ts"), twinFirst);
    expect(error.message).toMatch(/two flows named "twin"/);
    expect(error.message).toContain('"first"');
    expect(error.message).toContain('"second"');
  });

  it("rejects a flow that is defined in the file but not exported from it", async () => {
    const error = await expectBundleError(TWO_FLOWS, new Flow("hidden", { module: TWO_FLOWS }));
    expect(error.message).toMatch(/Flow "hidden" is defined in .*two-flows\.ts but not exported from it/);
  });
});

describe("flow.register", () => {
  let backend: SqliteBackend;
  let storage: MemoryStorage;

  beforeEach(async () => {
    backend = await SqliteBackend.open({ path: join(home.path, "state", "tern.db") });
    storage = new MemoryStorage({ name: uniqueName() });
  });

  afterEach(async () => {
    await backend.close();
  });

  it("records version 1 as new, then reports an unchanged flow without uploading anything", async () => {
    const first = await scaled.register("proj", { backend, storage });
    expect(first).toMatchObject({ name: "scaled", project: "proj", version: 1, status: "new", labels: [] });
    expect(first.bytesUploaded).toBeGreaterThan(0);
    expect(first.location).toBe(`flows/scaled/${first.hash}.json`);

    const again = await scaled.register("proj", { backend, storage });
    expect(again).toMatchObject({ version: 1, status: "unchanged", hash: first.hash, bytesUploaded: 0 });

    const flows = await backend.listFlows("proj");
    expect(flows).toHaveLength(1);
    const version = await backend.getFlowVersion("proj", "scaled");
    expect(version).toMatchObject({ version: 1, location: first.location, manifestHash: first.hash });
  });

  it("records a new version when labels are added, with the labels in the manifest", async () => {
    const first = await scaled.register("proj", { backend, storage });
    const labelled = await scaled.register("proj", { backend, storage, labels: ["dev", "gpu"] });
    expect(labelled).toMatchObject({ version: 2, status: "new", labels: ["dev", "gpu"] });
    expect(labelled.hash).not.toBe(first.hash);
    // Only the manifest changed: the bundle was stored already.
    expect(labelled.bytesUploaded).toBe((await storage.blobs.get(labelled.location)).byteLength);
    const manifest = await storage.readManifest(labelled.location, { expectedHash: labelled.hash });
    expect(manifest.labels).toEqual(["dev", "gpu"]);
    expect(await backend.getFlowVersion("proj", "scaled")).toMatchObject({ version: 2, labels: ["dev", "gpu"] });
  });

  it("loads and runs what it registered", async () => {
    const result = await greeting.register("proj", { backend, storage });
    const { flow } = await storage.load(result.location, { expectedHash: result.hash });
    expect((await flow.run()).outputs).toEqual({ message: "hello, tern" });
  });

  it("registers into the default LocalStorage under TERN_HOME when the flow has no storage", async () => {
    const result = await greeting.register("proj", { backend });
    const file = join(home.path, "storage", ...result.location.split("/"));
    expect(sha256Hex(await readFile(file))).toBe(result.hash);
  });

  it("rejects build: false when the storage holds no build of the flow, recording nothing", async () => {
    const attempt = scaled.register("proj", { backend, storage, build: false });
    await expect(attempt).rejects.toMatchObject({ code: "NOT_BUILT" });
    await expect(attempt).rejects.toThrow(/storage\.build\(\)/);
    expect(await backend.listFlows()).toEqual([]);
    expect(await storage.blobs.list("")).toEqual([]);
  });

  it("registers with build: false from a storage built beforehand, uploading only the manifest", async () => {
    storage.add(scaled);
    const [built] = await storage.build();
    const result = await scaled.register("proj", { backend, storage, build: false });
    expect(result).toMatchObject({ status: "new", version: 1 });
    const manifest = await storage.readManifest(result.location);
    expect(manifest.bundle).toEqual(built?.manifest.bundle);
    expect(result.bytesUploaded).toBe((await storage.blobs.get(result.location)).byteLength);
  });

  it("rejects default-storage options for a flow that has its own storage, recording nothing", async () => {
    const attempt = withStorage.register("proj", { backend, directory: join(home.path, "elsewhere") });
    await expect(attempt).rejects.toMatchObject({ code: "REGISTER" });
    await expect(attempt).rejects.toThrow(/"directory"/);
    await expect(attempt).rejects.toThrow(/flow "with-storage" has its own storage/);
    expect(await backend.listFlows()).toEqual([]);
  });

  for (const label of ["", "   "]) {
    it(`rejects the label ${JSON.stringify(label)}, recording and storing nothing`, async () => {
      const attempt = scaled.register("proj", { backend, storage, labels: ["dev", label] });
      await expect(attempt).rejects.toMatchObject({ code: "ENVIRONMENT" });
      await expect(attempt).rejects.toThrow(`label ${JSON.stringify(label)} is empty or whitespace`);
      expect(await backend.listFlows()).toEqual([]);
      expect(await storage.blobs.list("")).toEqual([]);
    });
  }

  it("rejects an environment dependency that is not installed, naming it, recording and storing nothing", async () => {
    const attempt = needsPackage.register("proj", { backend, storage });
    await expect(attempt).rejects.toMatchObject({ code: "DEPENDENCY" });
    await expect(attempt).rejects.toThrow(/dependency "definitely-not-installed-pkg"/);
    await expect(attempt).rejects.toThrow(/pnpm add definitely-not-installed-pkg/);
    expect(await backend.listFlows()).toEqual([]);
    expect(await storage.blobs.list("")).toEqual([]);
  });

  it("removes what it uploaded when the backend refuses the version", async () => {
    await backend.close();
    await expect(scaled.register("proj", { backend, storage })).rejects.toThrow(/closed/);
    expect(await storage.blobs.list("")).toEqual([]);
  });

  it("keeps a bundle that was stored before when the backend refuses the version", async () => {
    const first = await scaled.register("proj", { backend, storage });
    const manifest = await storage.readManifest(first.location);
    await backend.close();
    await expect(scaled.register("proj", { backend, storage, labels: ["dev"] })).rejects.toThrow(/closed/);
    expect(await storage.blobs.list("")).toEqual([first.location, manifest.bundle.key].sort());
  });

  it("rejects a project name with surrounding spaces", async () => {
    await expect(scaled.register(" proj", { backend, storage })).rejects.toMatchObject({ code: "REGISTER" });
    expect(await backend.listFlows()).toEqual([]);
  });

  it("rejects a flow whose module file does not exist, recording nothing", async () => {
    const inline = new Flow("inline", { module: join(fixtures, "nowhere.ts") }, () => ({
      one: task("one", () => 1)(),
    }));
    await expect(inline.register("proj", { backend, storage })).rejects.toThrow(BundleError);
    expect(await backend.listFlows()).toEqual([]);
  });
});
