import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { gunzipSync } from "node:zlib";
import { isTernError } from "@tern/core";
import { extract } from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dependenciesCacheKey,
  dependenciesLayer,
  installedVersion,
  npmCpu,
  packageNameProblem,
  parseDependency,
  resolveDependencies,
} from "../../src/image/dependencies.js";
import { readLayerFiles } from "../../src/image/layer.js";
import { findNpm, type NpmCommand } from "../../src/image/npm.js";

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tern-deps-unit-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A directory under the test's temporary root. */
async function dir(...parts: string[]): Promise<string> {
  const path = join(root, ...parts);
  await mkdir(path, { recursive: true });
  return path;
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, JSON.stringify(value));
}

/** What a call threw, for assertions on tern errors. */
async function thrown(action: () => unknown): Promise<Error & { code?: string }> {
  try {
    await action();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected a failure");
}

describe("parseDependency", () => {
  it("reads names with and without versions, scoped or not", () => {
    expect(parseDependency("sharp")).toEqual({ name: "sharp", version: undefined });
    expect(parseDependency("sharp@0.33.5")).toEqual({ name: "sharp", version: "0.33.5" });
    expect(parseDependency("@scope/pkg@^1")).toEqual({ name: "@scope/pkg", version: "^1" });
    expect(parseDependency("@scope/pkg")).toEqual({ name: "@scope/pkg", version: undefined });
    expect(parseDependency("pg@>=8 <9")).toEqual({ name: "pg", version: ">=8 <9" });
    expect(parseDependency("canvas@3.0.0-rc.2")).toEqual({ name: "canvas", version: "3.0.0-rc.2" });
    expect(parseDependency("sharp@latest")).toEqual({ name: "sharp", version: "latest" });
    // Names from before npm required lower case are still installable.
    expect(parseDependency("JSONStream@1.3.5")).toEqual({ name: "JSONStream", version: "1.3.5" });
  });

  it.each([
    ["", /has no package name/],
    ["-rf", /starts with '-'/],
    ["--registry=http://evil.example", /starts with '-'/],
    ["sharp; rm -rf /", /'\/' outside a scope|characters npm names cannot have/],
    ["$(whoami)", /characters npm names cannot have/],
    ["`id`", /characters npm names cannot have/],
    ["a b", /characters npm names cannot have/],
    ["sharp|cat", /characters npm names cannot have/],
    [".hidden", /starts with '.' or '_'/],
    ["_private", /starts with '.' or '_'/],
    ["node_modules", /npm refuses as a name/],
    ["../escape", /starts with '.'/],
    ["owner/repo", /'\/' outside a scope/],
    ["@scope", /scoped name of the form @scope\/name/],
    ["@scope/", /characters npm names cannot have/],
    ["@scope/a/b", /scoped name/],
    ["@/pkg", /characters npm names cannot have/],
    ["x".repeat(215), /214 characters/],
    ["sharp@", /empty version/],
    ["sharp@file:../sharp", /not a version, range or tag/],
    ["sharp@git+https://github.com/lovell/sharp.git", /not a version, range or tag/],
    ["sharp@npm:other@1", /not a version, range or tag/],
    ["sharp@https://example.com/sharp.tgz", /not a version, range or tag/],
    ["sharp@--foo", /not a version, range or tag/],
    ["sharp@1.0.0;id", /not a version, range or tag/],
    ["sharp@$(id)", /not a version, range or tag/],
  ])("refuses %j, naming it", (spec, reason) => {
    let error: (Error & { code?: string }) | undefined;
    try {
      parseDependency(spec);
    } catch (caught) {
      error = caught as Error & { code?: string };
    }
    expect(error).toBeDefined();
    expect(isTernError(error, "STORAGE_OPTIONS")).toBe(true);
    expect(error?.message).toContain(`Dependency ${JSON.stringify(spec)}`);
    expect(error?.message).toMatch(reason);
    expect(error?.message).toContain("sharp@0.33.5");
  });

  it("says what is wrong with a name, and nothing for a good one", () => {
    expect(packageNameProblem("sharp")).toBeUndefined();
    expect(packageNameProblem("@img/sharp-linux-arm64")).toBeUndefined();
    expect(packageNameProblem("lodash.merge")).toBeUndefined();
    expect(packageNameProblem("favicon.ico")).toMatch(/refuses/);
  });
});

describe("installedVersion", () => {
  it("reads the version in the project's node_modules, else in a parent's, as Node resolves", async () => {
    const workspace = await dir("resolve", "workspace");
    const project = await dir("resolve", "workspace", "apps", "flows");
    await writeJson(join(workspace, "node_modules", "sharp", "package.json"), { name: "sharp", version: "0.33.4" });
    await writeJson(join(workspace, "node_modules", "@img", "colour", "package.json"), {
      name: "@img/colour",
      version: "1.0.0",
    });
    await writeJson(join(project, "node_modules", "pg", "package.json"), { name: "pg", version: "8.13.1" });
    // The nearer one wins.
    await writeJson(join(project, "node_modules", "sharp", "package.json"), { name: "sharp", version: "0.33.5" });

    expect(await installedVersion("sharp", project)).toBe("0.33.5");
    expect(await installedVersion("pg", project)).toBe("8.13.1");
    expect(await installedVersion("@img/colour", project)).toBe("1.0.0");
    expect(await installedVersion("pg", workspace)).toBeUndefined();
    expect(await installedVersion("tern-not-installed-anywhere", project)).toBeUndefined();
  });

  it("refuses a package installed under an alias, and a package.json without a version", async () => {
    const project = await dir("resolve", "aliased");
    await writeJson(join(project, "node_modules", "sharp", "package.json"), { name: "sharp-fork", version: "1.0.0" });
    await writeJson(join(project, "node_modules", "broken", "package.json"), { name: "broken" });
    const alias = await thrown(() => installedVersion("sharp", project));
    expect(alias.code).toBe("DEPENDENCY");
    expect(alias.message).toMatch(/"sharp-fork" installed under an alias.*sharp@<version>/);
    const broken = await thrown(() => installedVersion("broken", project));
    expect(broken.message).toMatch(/has no version.*broken@<version>/);
  });
});

describe("resolveDependencies", () => {
  it("takes given versions as they are and bare names at the project's installed version", async () => {
    const project = await dir("resolve", "project");
    await writeJson(join(project, "node_modules", "sharp", "package.json"), { name: "sharp", version: "0.33.5" });
    expect(await resolveDependencies(["sharp", "pg@^8"], project)).toEqual([
      { name: "sharp", version: "0.33.5", from: "project" },
      { name: "pg", version: "^8", from: "given" },
    ]);
  });

  it("fails for a bare name the project does not have, naming it and both fixes", async () => {
    const project = await dir("resolve", "empty");
    const error = await thrown(() => resolveDependencies(["canvas"], project));
    expect(error.code).toBe("DEPENDENCY");
    expect(error.message).toContain('Dependency "canvas"');
    expect(error.message).toContain("npm i canvas");
    expect(error.message).toContain("canvas@<version>");
  });

  it("refuses no dependencies, a name given twice and a bad name among good ones", async () => {
    const project = await dir("resolve", "empty");
    expect((await thrown(() => resolveDependencies([], project))).message).toMatch(/dependencies are empty/);
    expect((await thrown(() => resolveDependencies(["pg@8", "pg@^8"], project))).message).toMatch(
      /name "pg" twice \("pg@8" and "pg@\^8"\)/,
    );
    expect((await thrown(() => resolveDependencies(["pg@8", "$(id)"], project))).message).toContain(
      'Dependency "$(id)"',
    );
  });
});

describe("npmCpu", () => {
  it("maps image architectures to npm's cpu names, and refuses other systems", () => {
    expect(npmCpu({ os: "linux", architecture: "amd64" })).toBe("x64");
    expect(npmCpu({ os: "linux", architecture: "arm64", variant: "v8" })).toBe("arm64");
    expect(() => npmCpu({ os: "windows", architecture: "amd64" })).toThrow(/platform windows\/amd64.*linux\/amd64/);
    expect(() => npmCpu({ os: "linux", architecture: "mips64le" })).toThrow(/linux\/mips64le/);
    expect(() => npmCpu({ os: "linux", architecture: "toString" })).toThrow(/linux\/toString/);
  });
});

describe("dependenciesCacheKey", () => {
  const deps = [
    { name: "sharp", version: "0.33.5", from: "project" as const },
    { name: "pg", version: "8.13.1", from: "given" as const },
  ];
  const arm = { os: "linux", architecture: "arm64" };
  it("depends on the specs (not their order), the platform, the C library and npm's major version", () => {
    const key = dependenciesCacheKey(deps, arm, "glibc", "11.19.1");
    expect(dependenciesCacheKey([...deps].reverse(), arm, "glibc", "11.2.0")).toBe(key);
    expect(dependenciesCacheKey(deps, { os: "linux", architecture: "amd64" }, "glibc", "11.19.1")).not.toBe(key);
    expect(dependenciesCacheKey(deps, arm, "musl", "11.19.1")).not.toBe(key);
    expect(dependenciesCacheKey(deps, arm, "glibc", "10.9.0")).not.toBe(key);
    expect(
      dependenciesCacheKey([{ name: "sharp", version: "0.33.4", from: "project" }, deps[1]!], arm, "glibc", "11.19.1"),
    ).not.toBe(key);
  });
});

describe("findNpm", () => {
  it("finds the npm of Node's own install (Unix layout), with its version from its package.json", async () => {
    const prefix = await dir("node-unix");
    await dir("node-unix", "bin");
    const cli = join(prefix, "lib", "node_modules", "npm", "bin", "npm-cli.js");
    await mkdir(join(cli, ".."), { recursive: true });
    await writeFile(cli, "");
    await writeJson(join(prefix, "lib", "node_modules", "npm", "package.json"), { name: "npm", version: "10.9.2" });
    const node = join(prefix, "bin", "node");
    expect(await findNpm(node, { PATH: "" })).toEqual({ command: node, args: [cli], version: "10.9.2" });
  });

  it("falls back to npm on PATH, and finds none where there is none", async () => {
    const bin = await dir("path-only", "bin");
    await writeFile(join(bin, "npm"), "#!/bin/sh\necho 9.9.9\n");
    await chmod(join(bin, "npm"), 0o755);
    const node = join(await dir("path-only", "node"), "node");
    expect(await findNpm(node, { PATH: ["relative/bin", join(root, "nowhere"), bin].join(":") })).toEqual({
      command: join(bin, "npm"),
      args: [],
    });
    expect(await findNpm(node, { PATH: join(root, "nowhere") })).toBeUndefined();
  });

  it("finds the npm that comes with this Node", async () => {
    const npm = await findNpm();
    expect(npm).toBeDefined();
    expect(npm?.version ?? "").toMatch(/^\d+\.\d+\.\d+/);
  });
});

/**
 * A stand-in for npm: records each call's arguments, answers `--version`, and "installs" the
 * package.json's dependencies as small packages (an executable file, a `.bin` link, a hidden
 * lockfile marking one install script). A dependency named `tern-fail` makes it fail like npm.
 */
const FAKE_NPM = `
const fs = require("node:fs");
const path = require("node:path");
const args = process.argv.slice(2);
fs.appendFileSync(process.env.FAKE_NPM_LOG, JSON.stringify({ args, cwd: process.cwd() }) + "\\n");
if (args[0] === "--version") { console.log("11.4.2"); process.exit(0); }
if (fs.existsSync(".npmrc")) fs.appendFileSync(process.env.FAKE_NPM_LOG + ".npmrc", fs.readFileSync(".npmrc"));
const manifest = JSON.parse(fs.readFileSync("package.json", "utf8"));
const lock = { name: manifest.name, lockfileVersion: 3, packages: {} };
for (const [name, version] of Object.entries(manifest.dependencies)) {
  if (name === "tern-fail") {
    console.error("npm error code E404");
    console.error("npm error 404 Not Found - GET https://registry.npmjs.org/tern-fail - Not found");
    console.error("npm error 404  The requested resource 'tern-fail@" + version + "' could not be found or you do not have permission to access it.");
    process.exit(1);
  }
  const dir = path.join("node_modules", name);
  fs.mkdirSync(path.join(dir, "bin"), { recursive: true });
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name, version: version.replace(/^[\\^~]/, "") }));
  fs.writeFileSync(path.join(dir, "bin", "cli"), "#!/usr/bin/env node\\n", { mode: 0o755 });
  fs.writeFileSync(path.join(dir, "index.js"), "module.exports = " + JSON.stringify(name) + ";\\n");
  fs.mkdirSync(path.join("node_modules", ".bin"), { recursive: true });
  fs.symlinkSync(path.join("..", name, "bin", "cli"), path.join("node_modules", ".bin", name.replace(/.*\\//, "")));
  lock.packages["node_modules/" + name] = { version, hasInstallScript: name === "native-thing" ? true : undefined };
}
console.error("npm warn deprecated old-thing@1.0.0: use new-thing");
fs.writeFileSync(path.join("node_modules", ".package-lock.json"), JSON.stringify(lock));
`;

interface TarEntry {
  readonly type: string;
  readonly mode: number;
  readonly linkname?: string;
}

/** Every entry of a gzipped layer by its path (`tern/node_modules/...`). */
async function listLayer(gzipped: Uint8Array): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const tar = extract();
  const reading = (async () => {
    for await (const entry of tar) {
      const { name, type, mode, linkname } = entry.header;
      entries.set(name.replace(/\/$/, ""), {
        type: type ?? "file",
        mode: mode ?? 0,
        ...(linkname ? { linkname } : {}),
      });
      await buffer(entry);
    }
  })();
  Readable.from([gunzipSync(gzipped)]).pipe(tar);
  await reading;
  return entries;
}

describe("dependenciesLayer (with a stand-in npm)", () => {
  let npm: NpmCommand;
  let log: string;
  let project: string;

  beforeAll(async () => {
    const fakeDir = await dir("fake-npm");
    await writeFile(join(fakeDir, "npm.cjs"), FAKE_NPM);
    npm = { command: process.execPath, args: [join(fakeDir, "npm.cjs")] };
    log = join(fakeDir, "calls.jsonl");
    process.env.FAKE_NPM_LOG = log;
    project = await dir("layer-project");
    await writeJson(join(project, "node_modules", "native-thing", "package.json"), {
      name: "native-thing",
      version: "2.1.0",
    });
    await writeFile(join(project, ".npmrc"), "@acme:registry=https://npm.acme.example/\n");
  });

  afterAll(() => {
    delete process.env.FAKE_NPM_LOG;
  });

  async function calls(): Promise<{ args: string[]; cwd: string }[]> {
    const text = await readFile(log, "utf8").catch(() => "");
    return text
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as { args: string[]; cwd: string });
  }

  it("installs for the platform in a fresh directory, and lays node_modules out under /tern/node_modules", async () => {
    const cacheDir = await dir("cache-a");
    const lines: string[] = [];
    const before = (await calls()).length;
    const result = await dependenciesLayer({
      dependencies: ["native-thing", "@acme/util@^1.2.0"],
      projectDir: project,
      platform: { os: "linux", architecture: "arm64" },
      cacheDir,
      npm,
      onProgress: (line) => lines.push(line),
    });

    expect(result.cached).toBe(false);
    expect(result.packages).toEqual({ "native-thing": "2.1.0", "@acme/util": "1.2.0" });
    expect(result.scriptsNotRun).toEqual(["native-thing@2.1.0"]);

    const made = (await calls()).slice(before);
    expect(made.map((call) => call.args[0])).toEqual(["--version", "install"]);
    const install = made[1]!;
    expect(install.args).toEqual(
      expect.arrayContaining([
        "--os=linux",
        "--cpu=arm64",
        "--libc=glibc",
        "--omit=dev",
        "--ignore-scripts",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
      ]),
    );
    // The temporary directory is gone afterwards.
    await expect(readdir(install.cwd)).rejects.toThrow(/ENOENT/);

    expect(lines).toContain("installing native-thing@2.1.0, @acme/util@^1.2.0 for linux/arm64 (npm 11.4.2)...");
    expect(lines).toContain("npm warn deprecated old-thing@1.0.0: use new-thing");
    expect(
      lines.some((line) => line.startsWith("install scripts not run") && line.includes("native-thing@2.1.0")),
    ).toBe(true);

    const entries = await listLayer(result.layer.bytes);
    expect(entries.get("tern/node_modules")?.type).toBe("directory");
    expect(entries.get("tern/node_modules/native-thing/bin/cli")).toEqual({ type: "file", mode: 0o755 });
    expect(entries.get("tern/node_modules/native-thing/index.js")).toEqual({ type: "file", mode: 0o644 });
    expect(entries.get("tern/node_modules/@acme/util/package.json")?.type).toBe("file");
    expect(entries.get("tern/node_modules/.bin/native-thing")).toEqual({
      type: "symlink",
      mode: 0o777,
      linkname: "../native-thing/bin/cli",
    });
    expect(entries.has("tern/node_modules/.package-lock.json")).toBe(false);
    const files = await readLayerFiles(result.layer.bytes, ["/tern/node_modules/@acme/util/package.json"]);
    expect(JSON.parse(Buffer.from(files.get("/tern/node_modules/@acme/util/package.json")!).toString())).toEqual({
      name: "@acme/util",
      version: "1.2.0",
    });
  });

  it("passes the project's .npmrc to npm", async () => {
    const cacheDir = await dir("cache-npmrc");
    await rm(`${log}.npmrc`, { force: true });
    await dependenciesLayer({
      dependencies: ["left-pad@1.3.0"],
      projectDir: project,
      platform: { os: "linux", architecture: "amd64" },
      cacheDir,
      npm,
    });
    expect(await readFile(`${log}.npmrc`, "utf8")).toBe("@acme:registry=https://npm.acme.example/\n");
  });

  it("uses the cached layer the second time (npm not run), and rebuilds a damaged one", async () => {
    const cacheDir = await dir("cache-b");
    const options = {
      dependencies: ["native-thing"],
      projectDir: project,
      platform: { os: "linux", architecture: "amd64" },
      cacheDir,
      npm,
    } as const;
    const first = await dependenciesLayer(options);
    expect(first.cached).toBe(false);
    const cachedFiles = (await readdir(cacheDir)).sort();
    expect(cachedFiles).toEqual([expect.stringMatching(/^[0-9a-f]{64}\.json$/), expect.stringMatching(/\.tar\.gz$/)]);

    const installs = (await calls()).filter((call) => call.args[0] === "install").length;
    const lines: string[] = [];
    const second = await dependenciesLayer({ ...options, onProgress: (line) => lines.push(line) });
    expect(second.cached).toBe(true);
    expect(second.layer).toEqual(first.layer);
    expect(second.packages).toEqual(first.packages);
    expect(second.scriptsNotRun).toEqual(first.scriptsNotRun);
    expect(lines).toEqual(["using the cached dependencies layer for native-thing@2.1.0 (linux/amd64)"]);
    expect((await calls()).filter((call) => call.args[0] === "install").length).toBe(installs);

    // Damage the cached layer: the next call installs again and gives the same layer.
    const layerFile = join(cacheDir, cachedFiles[1]!);
    const damaged = await readFile(layerFile);
    damaged[damaged.length - 10] = (damaged[damaged.length - 10]! + 1) % 256;
    await writeFile(layerFile, damaged);
    const repaired: string[] = [];
    const third = await dependenciesLayer({ ...options, onProgress: (line) => repaired.push(line) });
    expect(third.cached).toBe(false);
    expect(third.layer.digest).toBe(first.layer.digest);
    expect(repaired[0]).toMatch(/cached dependencies layer [0-9a-f]{64} is damaged/);
    expect(repaired.some((line) => line.startsWith("installing native-thing@2.1.0"))).toBe(true);
    expect((await dependenciesLayer(options)).cached).toBe(true);

    // The same dependencies installed afresh elsewhere give the same bytes.
    const elsewhere = await dependenciesLayer({ ...options, cacheDir: await dir("cache-c") });
    expect(elsewhere.cached).toBe(false);
    expect(elsewhere.layer.digest).toBe(first.layer.digest);
    expect(elsewhere.layer.diffId).toBe(first.layer.diffId);
  });

  it("reports npm's failure: the command in words, npm's last lines and the package it could not find", async () => {
    const error = await thrown(() =>
      dependenciesLayer({
        dependencies: ["tern-fail@1.0.0"],
        projectDir: project,
        platform: { os: "linux", architecture: "amd64" },
        cacheDir: join(root, "cache-fail"),
        npm: { ...npm, version: "11.4.2" },
      }),
    );
    expect(error.code).toBe("DEPENDENCY");
    expect(error.message).toContain("Cannot install the flow's dependencies tern-fail@1.0.0 for linux/amd64");
    expect(error.message).toMatch(/install --os=linux --cpu=x64 --libc=glibc .*exited with code 1/);
    expect(error.message).toContain("npm error 404 Not Found");
    expect(error.message).toContain('The registry has no package "tern-fail"');
  });

  it("says so when npm cannot be started", async () => {
    const error = await thrown(() =>
      dependenciesLayer({
        dependencies: ["left-pad@1.3.0"],
        projectDir: project,
        platform: { os: "linux", architecture: "amd64" },
        cacheDir: join(root, "cache-missing"),
        npm: { command: join(root, "no-such-npm"), args: [] },
      }),
    );
    expect(error.code).toBe("DEPENDENCY");
    expect(error.message).toMatch(/npm \(.*no-such-npm\) could not be started: .*ENOENT.*Install npm/);
  });

  it("checks the platform and the dependencies before running npm", async () => {
    const before = (await calls()).length;
    const platform = await thrown(() =>
      dependenciesLayer({
        dependencies: ["left-pad@1.3.0"],
        projectDir: project,
        platform: { os: "darwin", architecture: "arm64" },
        npm,
      }),
    );
    expect(platform.message).toMatch(/platform darwin\/arm64/);
    const missing = await thrown(() =>
      dependenciesLayer({
        dependencies: ["sharp"],
        projectDir: project,
        platform: { os: "linux", architecture: "amd64" },
        npm,
      }),
    );
    expect(missing.message).toContain('Dependency "sharp" of the Docker storage is not installed');
    expect((await calls()).length).toBe(before);
  });

  it("keeps a link npm made with an absolute path, made relative to hold in the image", async () => {
    const linker = await dir("fake-npm-linker");
    await writeFile(
      join(linker, "npm.cjs"),
      `const fs = require("node:fs"); const path = require("node:path");
       fs.mkdirSync("node_modules/a/lib", { recursive: true });
       fs.writeFileSync("node_modules/a/package.json", JSON.stringify({ name: "a", version: "1.0.0" }));
       fs.writeFileSync("node_modules/a/lib/index.js", "");
       fs.symlinkSync(path.resolve("node_modules/a/lib/index.js"), "node_modules/a/main.js");`,
    );
    const result = await dependenciesLayer({
      dependencies: ["a@1.0.0"],
      projectDir: project,
      platform: { os: "linux", architecture: "amd64" },
      cacheDir: await dir("cache-linker"),
      npm: { command: process.execPath, args: [join(linker, "npm.cjs")], version: "11.0.0" },
    });
    expect((await listLayer(result.layer.bytes)).get("tern/node_modules/a/main.js")).toEqual({
      type: "symlink",
      mode: 0o777,
      linkname: "lib/index.js",
    });
  });
});
