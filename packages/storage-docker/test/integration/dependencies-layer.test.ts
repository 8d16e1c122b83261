/**
 * The dependencies layer with the real npm and the npm registry: esbuild (the version this
 * workspace uses, taken from its node_modules as a bare name is) ships its binary as one
 * platform package per os/cpu in optionalDependencies, so the layer must hold the image's and no
 * other.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dependenciesLayer } from "../../src/image/dependencies.js";
import { readLayerFiles } from "../../src/image/layer.js";

const workspaceRoot = join(import.meta.dirname, "..", "..", "..", "..");
const ARM64_BINARY = "/tern/node_modules/@esbuild/linux-arm64/bin/esbuild";
const X64_BINARY = "/tern/node_modules/@esbuild/linux-x64/bin/esbuild";
/** ELF's e_machine (bytes 18-19, little-endian): what CPU a binary is for. */
const EM_X86_64 = 0x3e;
const EM_AARCH64 = 0xb7;

let root: string;
let esbuildVersion: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tern-deps-npm-"));
  esbuildVersion = (
    JSON.parse(await readFile(join(workspaceRoot, "node_modules", "esbuild", "package.json"), "utf8")) as {
      version: string;
    }
  ).version;
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function elfMachine(binary: Uint8Array | undefined): number | undefined {
  return binary === undefined ? undefined : (binary[18] ?? 0) | ((binary[19] ?? 0) << 8);
}

describe("dependenciesLayer with npm and the registry", () => {
  it("installs esbuild for linux/arm64 with the arm64 binary only, then reuses the cached layer", async () => {
    const cacheDir = join(root, "cache-arm64");
    const lines: string[] = [];
    const options = {
      dependencies: ["esbuild"],
      projectDir: workspaceRoot,
      platform: { os: "linux", architecture: "arm64" },
      cacheDir,
    } as const;
    const first = await dependenciesLayer({ ...options, onProgress: (line) => lines.push(line) });

    expect(first.cached).toBe(false);
    expect(first.packages).toEqual({ esbuild: esbuildVersion });
    expect(
      lines.filter((line) => line.startsWith(`installing esbuild@${esbuildVersion} for linux/arm64 (npm `)),
    ).toHaveLength(1);
    // esbuild's postinstall only checks and speeds up its binary; it was not run, and is reported.
    expect(first.scriptsNotRun).toEqual([`esbuild@${esbuildVersion}`]);
    const files = await readLayerFiles(first.layer.bytes, [
      ARM64_BINARY,
      X64_BINARY,
      "/tern/node_modules/esbuild/package.json",
    ]);
    expect(elfMachine(files.get(ARM64_BINARY))).toBe(EM_AARCH64);
    expect(files.has(X64_BINARY)).toBe(false);
    expect(files.has("/tern/node_modules/esbuild/package.json")).toBe(true);

    const again: string[] = [];
    const second = await dependenciesLayer({ ...options, onProgress: (line) => again.push(line) });
    expect(second.cached).toBe(true);
    expect(second.layer.digest).toBe(first.layer.digest);
    expect(second.layer.diffId).toBe(first.layer.diffId);
    expect(again).toEqual([`using the cached dependencies layer for esbuild@${esbuildVersion} (linux/arm64)`]);
  }, 180_000);

  it("installs esbuild for linux/amd64 with the x64 binary only, the same bytes each time", async () => {
    const options = {
      dependencies: [`esbuild@${esbuildVersion}`],
      projectDir: root,
      platform: { os: "linux", architecture: "amd64" },
    } as const;
    const first = await dependenciesLayer({ ...options, cacheDir: join(root, "cache-amd64-a") });
    const files = await readLayerFiles(first.layer.bytes, [ARM64_BINARY, X64_BINARY]);
    expect(elfMachine(files.get(X64_BINARY))).toBe(EM_X86_64);
    expect(files.has(ARM64_BINARY)).toBe(false);

    // A fresh install into another cache: the same versions give the same layer.
    const second = await dependenciesLayer({ ...options, cacheDir: join(root, "cache-amd64-b") });
    expect(second.cached).toBe(false);
    expect(second.layer.digest).toBe(first.layer.digest);
  }, 180_000);

  it("fails for a package the registry does not have, naming it", async () => {
    const name = "tern-no-such-package-xyz-0000";
    const failure = dependenciesLayer({
      dependencies: [`${name}@1.0.0`],
      projectDir: root,
      platform: { os: "linux", architecture: "amd64" },
      cacheDir: join(root, "cache-missing"),
    });
    await expect(failure).rejects.toMatchObject({ code: "DEPENDENCY" });
    await expect(failure).rejects.toThrow(`The registry has no package "${name}"`);
    await expect(failure).rejects.toThrow(/npm install --os=linux --cpu=x64 .* exited with code 1/);
  }, 180_000);
});
