/** Options `register()` passes to the default storage: checked by the storage type's schema, and typed. */
import { join } from "node:path";
import { MemoryStorage } from "@tern/core";
import { registerStorageOptionsSchema, storageOptionsSchema } from "@tern/core/plugin";
import { defaultStorageOptionsFromText, SqliteBackend, setDefaultStorageType } from "@tern/core/runtime";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as z from "zod/mini";
import { greeting } from "../fixtures/two-flows.js";

const home = useTempTernHome("tern-register-options-");

let backend: SqliteBackend;
beforeEach(async () => {
  backend = await SqliteBackend.open({ path: join(home.path, "state.db") });
});
afterEach(async () => {
  setDefaultStorageType("LocalStorage");
  await backend.close();
});

describe("register()'s options for the default storage", () => {
  it.each([
    {
      type: "LocalStorage",
      options: { registry_url: "gcr.io/x" },
      message: /^LocalStorage: unknown option "registry_url"\. Valid options: prefix, external, directory\.$/,
    },
    {
      type: "LocalStorage",
      options: { directory: 42 },
      message: /^LocalStorage: option "directory" must be a string, not a number\.$/,
    },
    { type: "LocalStorage", options: { directory: "" }, message: /option "directory" must not be empty/ },
    {
      type: "LocalStorage",
      options: { external: "aws-sdk" },
      message: /option "external" must be an array, not a string/,
    },
    {
      type: "MemoryStorage",
      options: { nam: "x" },
      message: /^MemoryStorage: unknown option "nam"\. Valid options: prefix, external, name\.$/,
    },
  ])("refuses $options for $type, naming it, and records nothing", async ({ type, options, message }) => {
    setDefaultStorageType(type);
    const attempt = greeting.register("proj", { backend, ...(options as object) });
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_OPTIONS" });
    await expect(attempt).rejects.toThrow(message);
    expect(await backend.listFlows()).toEqual([]);
  });

  it("builds the default storage from valid options and records them with the version", async () => {
    const directory = join(home.path, "elsewhere");
    const result = await greeting.register("proj", { backend, directory, prefix: "team-a" });
    expect(result.location.startsWith("team-a/greeting/")).toBe(true);
    expect((await backend.getFlowVersion("proj", "greeting"))?.storage).toEqual({
      type: "LocalStorage",
      options: { prefix: "team-a", directory },
    });
  });

  it("refuses default-storage options next to a given storage, which would ignore them", async () => {
    const storage = new MemoryStorage({ name: "given" });
    const attempt = greeting.register("proj", { backend, storage, directory: "/tmp/x" });
    await expect(attempt).rejects.toMatchObject({ code: "REGISTER" });
    await expect(attempt).rejects.toThrow(/options "directory" configure the default storage, but a storage was given/);
    expect(await backend.listFlows()).toEqual([]);
  });

  it("types the options: a key no storage type takes does not compile", () => {
    // Only a type check: the call is never made.
    const never = () =>
      // @ts-expect-error registry_url is an option of no storage type.
      greeting.register("proj", { backend, registry_url: "gcr.io/x" });
    expect(typeof never).toBe("function");
  });
});

describe("default-storage options given as text (tern register --storage-option)", () => {
  it.each([
    { pairs: ["directory=/var/lib/tern"], parsed: { directory: "/var/lib/tern" } },
    { pairs: ["directory=42"], parsed: { directory: "42" } },
    { pairs: ["external=aws-sdk,sharp"], parsed: { external: ["aws-sdk", "sharp"] } },
    { pairs: ['external=["a"]'], parsed: { external: ["a"] } },
    { pairs: ["prefix=a=b"], parsed: { prefix: "a=b" } },
    { pairs: ["registry_url=gcr.io/x"], parsed: { registry_url: "gcr.io/x" } },
  ])("parses $pairs as LocalStorage expects", async ({ pairs, parsed }) => {
    expect(await defaultStorageOptionsFromText(pairs)).toEqual(parsed);
  });

  it("parses a value by the type its option takes: booleans, numbers and objects as JSON", async () => {
    registerStorageOptionsSchema(
      "TextTestStorage",
      z.strictObject({
        flag: z.optional(z.boolean()),
        count: z.optional(z.number()),
        config: z.optional(z.object({ endpoint: z.string() })),
        mode: z.optional(z.enum(["true", "false"])),
      }),
    );
    setDefaultStorageType("TextTestStorage");
    const pairs = ["flag=false", "count=3", 'config={"endpoint":"http://x"}', "mode=true"];
    expect(await defaultStorageOptionsFromText(pairs)).toEqual({
      flag: false,
      count: 3,
      config: { endpoint: "http://x" },
      mode: "true",
    });
    // What does not parse stays text, for the storage's check to name.
    expect(await defaultStorageOptionsFromText(["count=many"])).toEqual({ count: "many" });
  });

  it.each([
    { pairs: ["directory"], message: /storage option "directory" is not key=value/ },
    { pairs: ["prefix=a", "prefix=b"], message: /storage option "prefix" is given twice/ },
  ])("refuses $pairs", async ({ pairs, message }) => {
    await expect(defaultStorageOptionsFromText(pairs)).rejects.toThrow(message);
  });

  it("knows the built-in types' schemas once options were parsed", async () => {
    expect(await defaultStorageOptionsFromText([])).toEqual({});
    await defaultStorageOptionsFromText(["prefix=x"]);
    expect(Object.keys(storageOptionsSchema("MemoryStorage")?.shape ?? {})).toEqual(["prefix", "external", "name"]);
  });
});
