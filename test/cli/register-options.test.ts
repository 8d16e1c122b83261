/**
 * `tern register --storage-option` configures the default storage, checked by its schema; and
 * `--no-build` registers a build made by another process that shares only the storage.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ROOT, type TernHome, ternHome } from "../support/cli.js";

let t: TernHome;
beforeEach(async () => {
  t = await ternHome();
});
afterEach(() => t.cleanup());

describe("tern register --storage-option", () => {
  it.each([
    {
      option: "registry_url=gcr.io/x",
      message: /LocalStorage: unknown option "registry_url"\. Valid options: prefix, external, directory\./,
    },
    { option: "external=42", message: /LocalStorage: option "external" must be an array, not a number\./ },
    { option: "directory", message: /storage option "directory" is not key=value/ },
  ])("refuses $option, naming it, and records nothing", async ({ option, message }) => {
    const result = await t.tern(["register", "examples/etl.ts", "--storage-option", option]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(await t.json(["flows"])).toEqual([]);
  });

  it("builds the default storage from the options, values parsed as it expects", async () => {
    const directory = join(t.home, "elsewhere");
    const options = ["--storage-option", `directory=${directory}`, "--storage-option", "external=left-pad,zod"];
    expect((await t.tern(["register", "examples/etl.ts", ...options])).code).toBe(0);
    const { id } = await t.json<{ id: string }>(["run", "etl"]);
    expect((await t.tern(["agent", "--once"])).code).toBe(0);
    expect(await t.json(["runs", "show", id])).toMatchObject({ state: "Success" });
    const dir = join(directory, "flows", "etl");
    const manifest = (await readdir(dir)).find((f) => f.endsWith(".json")) as string;
    const { storage } = JSON.parse(await readFile(join(dir, manifest), "utf8")) as { storage: unknown };
    expect(storage).toEqual({
      type: "LocalStorage",
      options: { prefix: "flows", directory, external: ["left-pad", "zod"] },
    });
  });

  it("refuses options for a flow that has its own storage", async () => {
    const result = await t.tern(["register", "examples/prebuilt.ts", "--storage-option", "prefix=x"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/flow "prebuilt-first" .* has its own storage/);
  });
});

describe("tern register --no-build across processes", () => {
  let builder: string;
  beforeEach(async () => {
    builder = await mkdtemp(join(tmpdir(), "tern-builder-"));
  });
  afterEach(() => rm(builder, { recursive: true, force: true }));

  it("registers what an earlier step built on another machine into the shared storage", async () => {
    const storage = join(t.home, "shared-storage");
    // The build step: its own process and TERN_HOME; only the storage directory is shared.
    await promisify(execFile)(
      process.execPath,
      ["--conditions=@tern/source", "--import", "tsx", "test/fixtures/prebuild-etl.ts", storage],
      { cwd: ROOT, env: { ...process.env, TERN_HOME: builder } },
    );
    const result = await t.json<Array<{ name: string; status: string }>>([
      "register",
      "examples/etl.ts",
      "--no-build",
      "--storage-option",
      `directory=${storage}`,
    ]);
    expect(result).toMatchObject([{ name: "etl", status: "new" }]);
    const { id } = await t.json<{ id: string }>(["run", "etl"]);
    expect((await t.tern(["agent", "--once"])).code).toBe(0);
    expect(await t.json(["runs", "show", id])).toMatchObject({ state: "Success" });
  });
});
