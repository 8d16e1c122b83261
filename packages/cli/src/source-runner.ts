/**
 * The runner command of a tern that runs from this repository's TypeScript sources (`pnpm tern`,
 * `--import tsx`): the CLI compiled to JavaScript, built on demand and kept until the sources
 * change. A runner process per run that started through tsx spent seconds compiling TypeScript
 * before doing anything; from compiled JavaScript it starts about as fast as `node` itself.
 *
 * The build is esbuild's, synchronous (the agent asks for its runner command once, at start):
 * the CLI and the workspace packages in one folder of ES modules, split at every dynamic import
 * so that what a command does not use (the cloud SDKs, the DynamoDB backend) stays unloaded.
 * Packages from npm stay external (but zod): the folder lives in pnpm's hoisted
 * `node_modules/.pnpm/node_modules/.cache`, where every dependency resolves. Its name is the sha256
 * of every file the build reads from the workspace (sources, package manifests, the lockfile),
 * so an edited source gives a new build and an unchanged one is reused.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** How many builds the cache keeps (an agent still running may use an older one). */
const KEPT_BUILDS = 3;

/**
 * npm packages compiled in all the same: zod's locale index imports every language (dozens of
 * modules a runner would load to validate a manifest), and compiled in it shrinks to English.
 */
const INLINED: readonly string[] = ["zod"];

/** The workspace root: this file is packages/cli/src/source-runner.ts. */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** The workspace's files that go into the build, sorted: what the build's name is hashed from. */
export function sourceRunnerInputs(root: string = ROOT): string[] {
  const files = [join(root, "pnpm-lock.yaml"), join(root, "tsconfig.base.json")];
  const packages = join(root, "packages");
  for (const name of readdirSync(packages)) {
    const dir = join(packages, name);
    if (!existsSync(join(dir, "package.json"))) continue;
    files.push(join(dir, "package.json"));
    collect(join(dir, "src"), files);
  }
  files.push(fileURLToPath(import.meta.url));
  return [...new Set(files)].filter((file) => existsSync(file)).sort();
}

function collect(dir: string, into: string[]): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) collect(path, into);
    else into.push(path);
  }
}

/** The sha256 (hex) of the build's inputs: their paths (relative to the root) and contents. */
export function sourceRunnerKey(root: string = ROOT): string {
  const hash = createHash("sha256");
  for (const file of sourceRunnerInputs(root)) {
    hash.update(`${relative(root, file)}\0`);
    hash.update(readFileSync(file));
    hash.update("\0");
  }
  return hash.digest("hex");
}

/**
 * Where builds are kept: in pnpm's hoisted folder (`node_modules/.pnpm/node_modules`), where
 * every package of the workspace's dependencies resolves (a package's own node_modules holds only
 * its own dependencies: from core's, the DynamoDB backend's and the cloud SDKs did not resolve).
 */
export function sourceRunnerCacheDir(root: string = ROOT): string {
  return join(root, "node_modules", ".pnpm", "node_modules", ".cache", "tern-runner");
}

let built: string | undefined;

/**
 * The compiled CLI's entry for the current sources (built now if there is none), as a command:
 * `[node, <cache>/<hash>/main.mjs]`. Concurrent builders each write a folder of their own and
 * rename it into place, so a runner never sees half a build.
 */
export function sourceRunnerCommand(): string[] {
  built ??= ensureBuild();
  return [process.execPath, built];
}

function ensureBuild(): string {
  const cache = sourceRunnerCacheDir();
  const dir = join(cache, sourceRunnerKey().slice(0, 24));
  const entry = join(dir, "main.mjs");
  if (existsSync(entry)) return entry;
  mkdirSync(cache, { recursive: true });
  const staging = `${dir}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  buildInto(staging);
  try {
    renameSync(staging, dir);
  } catch (error) {
    // Another process put the same build in place first: use theirs.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(entry)) throw error;
  }
  pruneBuilds(cache, dir);
  return entry;
}

// CommonJS packages inlined into an ES module still call require() for Node's built-ins.
const BANNER =
  'import { createRequire as __ternCreateRequire } from "node:module";\nconst require = __ternCreateRequire(import.meta.url);';

function buildInto(outdir: string): void {
  // esbuild is a development dependency of this package: the sources are only run here.
  const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
  const cli = join(ROOT, "packages", "cli", "src");
  const common: import("esbuild").BuildOptions = {
    bundle: true,
    // Split at every dynamic import: what a command does not use stays unloaded.
    splitting: true,
    outExtension: { ".js": ".mjs" },
    // npm packages stay imports (the workspace's own packages are compiled in, from their sources).
    external: npmDependencies()
      .filter((name) => !INLINED.includes(name))
      .flatMap((name) => [name, `${name}/*`]),
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["@tern/source"],
    banner: { js: BANNER },
    sourcemap: "linked",
    logLevel: "silent",
  };
  const builds = [
    // The CLI; its lease keeper starts its worker from the keeper's own build below.
    esbuild.buildSync({
      ...common,
      entryPoints: { main: join(cli, "main.ts") },
      outdir,
      define: { __TERN_LEASE_KEEPER_BUNDLE__: JSON.stringify("./keeper/lease-keeper.mjs") },
    }),
    // The lease keeper's worker thread on its own: built with the CLI, its every chunk would be
    // shared with the CLI's (core's runtime is one module graph), and the thread would load
    // all of them before the run may start.
    esbuild.buildSync({
      ...common,
      entryPoints: { "lease-keeper": join(cli, "lease-keeper.ts") },
      outdir: join(outdir, "keeper"),
    }),
  ];
  const errors = builds.flatMap((result) => result.errors);
  if (errors.length > 0) {
    throw new Error(`building the runner from the sources failed: ${errors.map((e) => e.text).join("; ")}`);
  }
}

/** Every npm package the workspace's packages depend on (their `@tern/*` siblings left out). */
function npmDependencies(): string[] {
  const names = new Set<string>();
  const packages = join(ROOT, "packages");
  for (const name of readdirSync(packages)) {
    const manifest = join(packages, name, "package.json");
    if (!existsSync(manifest)) continue;
    const json = JSON.parse(readFileSync(manifest, "utf8")) as Record<string, Record<string, string> | undefined>;
    for (const field of ["dependencies", "devDependencies", "peerDependencies", "optionalDependencies"]) {
      for (const dependency of Object.keys(json[field] ?? {})) {
        if (!dependency.startsWith("@tern/")) names.add(dependency);
      }
    }
  }
  return [...names].sort();
}

function pruneBuilds(cache: string, keep: string): void {
  const builds = readdirSync(cache)
    .map((name) => join(cache, name))
    .filter((path) => path !== keep && !path.endsWith(".tmp"))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const old of builds.slice(KEPT_BUILDS - 1)) rmSync(old, { recursive: true, force: true });
}

/** Whether this module runs from the TypeScript sources (through tsx), not from a build. */
export function runningFromSources(): boolean {
  return import.meta.url.endsWith(".ts");
}
