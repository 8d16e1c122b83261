import { createHash, randomUUID } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { TernError } from "@tern/core";
import { ternHome } from "@tern/core/plugin";
import * as z from "zod/mini";
import { DIGEST_PATTERN, sha256Digest } from "../registry/digest.js";
import { formatPlatform, type PlatformWanted } from "../registry/platform.js";
import { treeEntries } from "./files.js";
import { buildLayer, type Layer, type LayerEntry } from "./layer.js";
import {
  findNpm,
  inWords,
  isFile,
  lastLines,
  type NpmCommand,
  npmEnv,
  npmMissing,
  npmVersion,
  type Ran,
  runNpm,
} from "./npm.js";

/** Where the installed packages are in the image. */
export const DEPENDENCIES_DIR = "/tern/node_modules";

/** A dependency as given: its package name, and the version or range when one was given. */
export interface DependencySpec {
  readonly name: string;
  /** An exact version (`0.33.5`), a range (`^1`, `>=1 <2`) or a dist-tag (`latest`). */
  readonly version: string | undefined;
}

/** A dependency with the version npm is asked for. */
export interface ResolvedDependency {
  readonly name: string;
  readonly version: string;
  /** `project` when the version is the one installed in the flow's project; `given` when the spec named it. */
  readonly from: "project" | "given";
}

export interface DependenciesLayerOptions {
  /** The packages, each `name` or `name@version` (`sharp`, `sharp@0.33.5`, `@scope/pkg@^1`); at least one. */
  readonly dependencies: readonly string[];
  /** The flow's project: bare names take the version installed here (or in a parent's `node_modules`). */
  readonly projectDir: string;
  /** The image's platform: `linux` on `amd64` or `arm64` (also `arm`, `386`, `ppc64le`, `s390x`, `riscv64`). */
  readonly platform: PlatformWanted;
  /** The C library of the image: `glibc` for Debian-based images (the Node images' default), `musl` for Alpine. @default "glibc" */
  readonly libc?: "glibc" | "musl";
  /** Where built layers are kept. @default `<TERN_HOME>/cache/docker-deps` */
  readonly cacheDir?: string;
  /** What the build is doing, a line at a time (`installing sharp@0.33.5 for linux/arm64...`). */
  readonly onProgress?: (line: string) => void;
  /** The npm to run. @default the npm that comes with the running Node (beside it), else `npm` on PATH */
  readonly npm?: NpmCommand;
}

export interface DependenciesLayer {
  readonly layer: Layer;
  /** Each dependency's name and the version installed. */
  readonly packages: Readonly<Record<string, string>>;
  /** Installed packages with install scripts, which were not run (`esbuild@0.28.2`); see {@link dependenciesLayer}. */
  readonly scriptsNotRun: readonly string[];
  /** Whether the layer came from the cache (npm did not run). */
  readonly cached: boolean;
}

const SPEC_HELP = "Give an npm package name, optionally with a version: sharp, sharp@0.33.5, @scope/pkg@^1.";

/** A scope or a name part: what npm accepts in a name that is also safe anywhere (no shell or URL syntax). */
const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Versions, ranges and dist-tags; no `:` or `/`, so no URLs, git, `file:` or `npm:` aliases. */
const VERSION = /^[A-Za-z0-9.+^~<>=|* -]+$/;

function specError(spec: string, reason: string): TernError {
  return new TernError(
    "STORAGE_OPTIONS",
    `Dependency ${JSON.stringify(spec)} of the Docker storage ${reason}. ${SPEC_HELP}`,
  );
}

/** Why `name` is not an npm package name, or undefined when it is one (npm's rules for names, scoped or not). */
export function packageNameProblem(name: string): string | undefined {
  if (name === "") return "has no package name";
  if (name.length > 214) return "has a package name longer than npm's 214 characters";
  if (name.startsWith("-")) return "starts with '-', which npm would read as an option";
  if (name.startsWith(".") || name.startsWith("_")) return "starts with '.' or '_', which npm names cannot";
  if (name === "node_modules" || name === "favicon.ico") return `is named ${name}, which npm refuses as a name`;
  const parts = name.startsWith("@") ? name.slice(1).split("/") : [name];
  if (name.startsWith("@") && parts.length !== 2) return "is not a scoped name of the form @scope/name";
  if (!name.startsWith("@") && name.includes("/"))
    return "has a '/' outside a scope (a path, a URL or owner/repo are not package names)";
  if (parts.some((part) => !NAME_PART.test(part))) {
    return "has characters npm names cannot have (letters, digits, '.', '_' and '-' only; each part starting with a letter or digit)";
  }
  return undefined;
}

/** `@scope/pkg@^1` → `{ name: "@scope/pkg", version: "^1" }`; refuses what is not a name with an optional registry version. */
export function parseDependency(spec: string): DependencySpec {
  if (typeof spec !== "string") throw specError(String(spec), "is not a string");
  const at = spec.indexOf("@", spec.startsWith("@") ? 1 : 0);
  const name = at === -1 ? spec : spec.slice(0, at);
  const problem = packageNameProblem(name);
  if (problem !== undefined) throw specError(spec, problem);
  if (at === -1) return { name, version: undefined };
  const version = spec.slice(at + 1);
  if (version.trim() === "") throw specError(spec, "has an empty version after '@'");
  if (!VERSION.test(version) || version.startsWith("-") || version !== version.trim()) {
    throw specError(
      spec,
      "has a version that is not a version, range or tag from the registry (URLs, git, file: and npm: aliases are not supported)",
    );
  }
  return { name, version };
}

/**
 * The version of `name` installed for `projectDir`: `node_modules/<name>/package.json` there or
 * in a parent directory, the first found, as Node resolves a bare import. Undefined when none is.
 */
export async function installedVersion(name: string, projectDir: string): Promise<string | undefined> {
  for (let dir = resolve(projectDir); ; dir = dirname(dir)) {
    const version = await versionIn(join(dir, "node_modules"), name);
    if (version !== undefined) return version;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The version of the package `name` in the `node_modules` directory given, undefined when it has none. */
async function versionIn(nodeModules: string, name: string): Promise<string | undefined> {
  const file = join(nodeModules, ...name.split("/"), "package.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw error;
  }
  let manifest: { name?: unknown; version?: unknown };
  try {
    manifest = JSON.parse(text) as typeof manifest;
  } catch (error) {
    throw new TernError(
      "DEPENDENCY",
      `${file} is not valid JSON, so the installed version of ${JSON.stringify(name)} cannot be read. Reinstall the package, or give ${name}@<version>.`,
      { cause: error },
    );
  }
  if (typeof manifest.version !== "string" || !VERSION.test(manifest.version)) {
    throw new TernError(
      "DEPENDENCY",
      `${file} has no version, so the installed version of ${JSON.stringify(name)} cannot be read. Reinstall the package, or give ${name}@<version>.`,
    );
  }
  if (manifest.name !== name) {
    throw new TernError(
      "DEPENDENCY",
      `${JSON.stringify(name)} in ${dirname(file)} is the package ${JSON.stringify(manifest.name)} installed under an alias, ` +
        `so its version is another package's. Give the dependency with a version: ${name}@<version> installs the registry's ${name}.`,
    );
  }
  return manifest.version;
}

/** Parses every spec and gives each a version: the one given, else the one installed in the project. */
export async function resolveDependencies(
  dependencies: readonly string[],
  projectDir: string,
): Promise<readonly ResolvedDependency[]> {
  if (!Array.isArray(dependencies) || dependencies.length === 0) {
    throw new TernError(
      "STORAGE_OPTIONS",
      'The Docker storage\'s dependencies are empty: list the npm packages the flow needs in its image (such as ["sharp"]), or leave the option out.',
    );
  }
  const specs = dependencies.map(parseDependency);
  const seen = new Map<string, string>();
  specs.forEach((spec, i) => {
    const earlier = seen.get(spec.name);
    if (earlier !== undefined) {
      throw new TernError(
        "STORAGE_OPTIONS",
        `The Docker storage's dependencies name ${JSON.stringify(spec.name)} twice (${JSON.stringify(earlier)} and ${JSON.stringify(dependencies[i])}): keep one.`,
      );
    }
    seen.set(spec.name, dependencies[i] as string);
  });
  return Promise.all(
    specs.map(async (spec): Promise<ResolvedDependency> => {
      if (spec.version !== undefined) return { name: spec.name, version: spec.version, from: "given" };
      const version = await installedVersion(spec.name, projectDir);
      if (version === undefined) {
        throw new TernError(
          "DEPENDENCY",
          `Dependency ${JSON.stringify(spec.name)} of the Docker storage is not installed in the flow's project (${resolve(projectDir)}, nor a parent's node_modules), ` +
            `so its version is unknown. Install it (npm i ${spec.name}), or give the version: ${spec.name}@<version>.`,
        );
      }
      return { name: spec.name, version, from: "project" };
    }),
  );
}

/** npm's `--cpu` for an image architecture (Go's names, as images use them; npm uses Node's). */
const NPM_CPU: Readonly<Record<string, string>> = {
  amd64: "x64",
  arm64: "arm64",
  arm: "arm",
  "386": "ia32",
  ppc64le: "ppc64",
  s390x: "s390x",
  riscv64: "riscv64",
};

export function npmCpu(platform: PlatformWanted): string {
  const cpu = Object.hasOwn(NPM_CPU, platform.architecture) ? NPM_CPU[platform.architecture] : undefined;
  if (platform.os !== "linux" || cpu === undefined) {
    throw new TernError(
      "STORAGE_OPTIONS",
      `Cannot install dependencies for platform ${formatPlatform(platform)}: images run on linux, on ${Object.keys(NPM_CPU).join(", ")} (such as linux/amd64 or linux/arm64).`,
    );
  }
  return cpu;
}

/** The cache key: the resolved specs, the platform, the C library and npm's major version. */
export function dependenciesCacheKey(
  dependencies: readonly ResolvedDependency[],
  platform: PlatformWanted,
  libc: string,
  npmVersionText: string,
): string {
  const key = {
    format: 1,
    dependencies: dependencies
      .map((d) => [d.name, d.version])
      .sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1)),
    os: platform.os,
    architecture: platform.architecture,
    libc,
    npm: npmVersionText.split(".")[0],
  };
  return createHash("sha256").update(JSON.stringify(key)).digest("hex");
}

const CacheRecord = z.object({
  digest: z.string().check(z.regex(DIGEST_PATTERN)),
  diffId: z.string().check(z.regex(DIGEST_PATTERN)),
  sizeBytes: z.int().check(z.nonnegative()),
  packages: z.record(z.string(), z.string()),
  scriptsNotRun: z.array(z.string()),
});
type CacheRecord = z.infer<typeof CacheRecord>;

/** The cached layer for `key`, or undefined when there is none or it is damaged (then it is rebuilt). */
async function readCache(
  cacheDir: string,
  key: string,
  progress: (line: string) => void,
): Promise<{ layer: Layer; record: CacheRecord } | undefined> {
  let record: CacheRecord;
  let bytes: Uint8Array;
  try {
    record = CacheRecord.parse(JSON.parse(await readFile(join(cacheDir, `${key}.json`), "utf8")));
    bytes = new Uint8Array(await readFile(join(cacheDir, `${key}.tar.gz`)));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      progress(`the cached dependencies layer ${key} cannot be read (${(error as Error).message}); building it again`);
    }
    return undefined;
  }
  const digest = sha256Digest(bytes);
  if (digest !== record.digest || bytes.byteLength !== record.sizeBytes) {
    progress(`the cached dependencies layer ${key} is damaged (${digest}, not ${record.digest}); building it again`);
    return undefined;
  }
  return { layer: { bytes, digest, diffId: record.diffId, sizeBytes: bytes.byteLength }, record };
}

/** Writes a file whole or not at all: a temporary file renamed into place. */
async function writeAtomically(path: string, content: Uint8Array | string): Promise<void> {
  const temp = `${path}.${randomUUID()}.tmp`;
  try {
    await writeFile(temp, content);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function writeCache(cacheDir: string, key: string, layer: Layer, record: CacheRecord): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  // The layer first: a record is only ever beside its layer (and a reader checks the digest anyway).
  await writeAtomically(join(cacheDir, `${key}.tar.gz`), layer.bytes);
  await writeAtomically(join(cacheDir, `${key}.json`), `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * The entries of the layer: everything under `nodeModules`, at `/tern/node_modules/...`. npm's
 * hidden lockfile (`.package-lock.json`) is left out: Node never reads it, and it records
 * registry URLs.
 */
function dependencyEntries(nodeModules: string): Promise<LayerEntry[]> {
  return treeEntries(nodeModules, DEPENDENCIES_DIR, {
    skip: (path) => path === ".package-lock.json",
    outsideLinkFix: "give the dependency as a version from the registry",
  });
}

/** Installed packages npm marks as having install scripts (from its hidden lockfile), as `name@version`. */
async function packagesWithScripts(nodeModules: string): Promise<string[]> {
  let lock: { packages?: Record<string, { version?: string; hasInstallScript?: boolean }> };
  try {
    lock = JSON.parse(await readFile(join(nodeModules, ".package-lock.json"), "utf8")) as typeof lock;
  } catch {
    return [];
  }
  return Object.entries(lock.packages ?? {})
    .filter(([, entry]) => entry.hasInstallScript === true)
    .map(
      ([path, entry]) =>
        `${path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length)}@${entry.version ?? "?"}`,
    )
    .sort();
}

function describeSpecs(dependencies: readonly ResolvedDependency[]): string {
  return dependencies.map((d) => `${d.name}@${d.version}`).join(", ");
}

/**
 * Installs `dependencies` for the image's platform and makes the layer of `/tern/node_modules`.
 *
 * npm runs in a fresh temporary directory holding a generated package.json (and the project's
 * `.npmrc`, for its registries and tokens), with `--os`, `--cpu` and `--libc` set to the image's
 * platform, so packages that ship prebuilt binaries as platform packages in
 * `optionalDependencies` (esbuild, sharp 0.33+, @napi-rs/canvas, swc, lightningcss...) get the
 * image's build and no other.
 *
 * Install scripts are **not** run (`--ignore-scripts`): they run on this machine, so a node-gyp
 * build or a prebuilt download (prebuild-install, node-pre-gyp) would make or fetch binaries for
 * this machine's CPU, C library and Node ABI, not the image's (an x64 CI runner registering an
 * arm64 flow would bake in x64 binaries that fail at run time), and they would run arbitrary
 * code at registration. Packages whose native part comes only from an install script (such as
 * better-sqlite3 or canvas without prebuilt platform packages) are listed in `scriptsNotRun` and
 * reported through `onProgress`; for those, choose a package that ships platform packages, or a
 * base image that has the module built.
 *
 * The same dependencies resolved to the same versions give the same layer (and digest); a range
 * or tag is resolved when the layer is first built and then cached by its text, so give exact
 * versions (or bare names) for layers that follow what is published.
 */
export async function dependenciesLayer(options: DependenciesLayerOptions): Promise<DependenciesLayer> {
  const progress = options.onProgress ?? (() => {});
  const libc = options.libc ?? "glibc";
  if (libc !== "glibc" && libc !== "musl") {
    throw new TernError(
      "STORAGE_OPTIONS",
      `libc ${JSON.stringify(libc)} is not "glibc" (Debian-based images) or "musl" (Alpine).`,
    );
  }
  const cpu = npmCpu(options.platform);
  const platform = formatPlatform({ os: options.platform.os, architecture: options.platform.architecture });
  const dependencies = await resolveDependencies(options.dependencies, options.projectDir);
  const npm = options.npm ?? (await findNpm());
  if (npm === undefined) throw npmMissing(undefined);
  const version = await npmVersion(npm);
  const cacheDir = options.cacheDir ?? join(ternHome(), "cache", "docker-deps");
  const key = dependenciesCacheKey(dependencies, options.platform, libc, version);

  const cached = await readCache(cacheDir, key, progress);
  if (cached !== undefined) {
    progress(`using the cached dependencies layer for ${describeSpecs(dependencies)} (${platform})`);
    return {
      layer: cached.layer,
      packages: cached.record.packages,
      scriptsNotRun: cached.record.scriptsNotRun,
      cached: true,
    };
  }

  const work = await mkdtemp(join(tmpdir(), "tern-deps-"));
  try {
    const manifest = {
      name: "tern-flow-dependencies",
      version: "0.0.0",
      private: true,
      description: "The npm packages of a flow image (made by tern's Docker storage).",
      dependencies: Object.fromEntries(dependencies.map((d) => [d.name, d.version])),
    };
    await writeFile(join(work, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    // The project's registry settings (a private registry, a scope's registry, a token from an
    // environment variable) hold for its dependencies here too.
    const npmrc = join(resolve(options.projectDir), ".npmrc");
    if (await isFile(npmrc)) await copyFile(npmrc, join(work, ".npmrc"));

    const args = [
      "install",
      "--os=linux",
      `--cpu=${cpu}`,
      `--libc=${libc}`,
      "--omit=dev",
      "--ignore-scripts",
      "--no-package-lock",
      "--no-audit",
      "--no-fund",
      "--no-update-notifier",
      "--no-progress",
      "--loglevel=warn",
    ];
    progress(`installing ${describeSpecs(dependencies)} for ${platform} (npm ${version})...`);
    let ran: Ran;
    try {
      ran = await runNpm(npm, args, work, npmEnv(), (line) => {
        if (/^npm warn/i.test(line)) progress(line);
      });
    } catch (error) {
      throw npmMissing(npm, error);
    }
    if (ran.code !== 0) {
      const notFound = /\b404\b[^\n]*'([^'\s]+)@[^'\s]*' (?:is not in this registry|could not be found)/.exec(
        ran.stderr,
      )?.[1];
      const fix =
        notFound !== undefined
          ? `The registry has no package ${JSON.stringify(notFound)}: check its name (and the registry in .npmrc for a private package).`
          : "Check the names and versions (npm view <name> versions), the registry and its credentials (.npmrc), and the network.";
      throw new TernError(
        "DEPENDENCY",
        `Cannot install the flow's dependencies ${describeSpecs(dependencies)} for ${platform}: ` +
          `\`${inWords(npm, args)}\` in ${work} ${ran.code === null ? `was stopped by ${ran.signal}` : `exited with code ${ran.code}`}:\n` +
          `${lastLines(ran.stderr) || "(npm printed nothing)"}\n${fix}`,
      );
    }

    const nodeModules = join(work, "node_modules");
    const packages: Record<string, string> = {};
    for (const dependency of dependencies) {
      const installed = await versionIn(nodeModules, dependency.name);
      if (installed === undefined) {
        throw new TernError(
          "DEPENDENCY",
          `npm finished without installing ${dependency.name}@${dependency.version} for ${platform}. Check that the package supports ${platform} (its "os" and "cpu" fields).`,
        );
      }
      packages[dependency.name] = installed;
    }
    const scriptsNotRun = await packagesWithScripts(nodeModules);
    if (scriptsNotRun.length > 0) {
      progress(
        `install scripts not run (they would build for this machine, not ${platform}): ${scriptsNotRun.join(", ")}; ` +
          "a package whose native binary comes only from its install script will not load in the image",
      );
    }
    const layer = await buildLayer(await dependencyEntries(nodeModules));
    progress(
      `dependencies layer ${layer.digest} (${(layer.sizeBytes / 1_048_576).toFixed(1)} MB): ${Object.entries(packages)
        .map(([name, v]) => `${name}@${v}`)
        .join(", ")}`,
    );
    const record: CacheRecord = {
      digest: layer.digest,
      diffId: layer.diffId,
      sizeBytes: layer.sizeBytes,
      packages,
      scriptsNotRun,
    };
    try {
      await writeCache(cacheDir, key, layer, record);
    } catch (error) {
      // The cache saves time only: a read-only home costs the next registration an install, not this one.
      progress(`the dependencies layer could not be cached in ${cacheDir} (${(error as Error).message})`);
    }
    return { layer, packages, scriptsNotRun, cached: false };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
