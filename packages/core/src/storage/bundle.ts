import { access, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { TernError } from "../errors.js";
import { sha256Hex } from "./blob-store.js";

/** A flow module could not be bundled: missing file, syntax error, unresolved import. */
export class BundleError extends TernError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("BUNDLE", message, options);
  }
}

/** Options of {@link bundleFlowModule}. */
export interface BundleOptions {
  /** Packages left out of the bundle, to be provided where the flow runs. */
  readonly external?: readonly string[];
}

/**
 * Registration (bundling, backends, storage uploads) never runs inside a flow bundle, so the
 * dynamic import behind `flow.register()` is replaced by a stub: bundles carry the flow, its
 * dependencies and tern's runner, not tern's registration machinery.
 */
const withoutRegistration = {
  name: "tern-without-registration",
  setup(build: {
    onResolve(
      o: { filter: RegExp },
      cb: (a: {
        path: string;
        importer: string;
        kind: string;
      }) => { path: string; namespace?: string; external?: boolean } | undefined,
    ): void;
    onLoad(
      o: { filter: RegExp; namespace: string },
      cb: (a: { path: string }) => { contents: string; loader: "js" },
    ): void;
  }) {
    build.onResolve({ filter: /^\.\.\/register\.js$/ }, (args) =>
      /[\\/]flow[\\/]flow\.[jt]s$/.test(args.importer) ? { path: "register", namespace: "tern-stub" } : undefined,
    );
    // Schedules' ticks are computed by agents from the manifest, never in a runner: bundles get
    // a cron job that accepts what registration checked and computes nothing (no croner).
    build.onResolve({ filter: /^\.\/cron\.js$/ }, (args) =>
      /[\\/]schedule[\\/](definition|ticks)\.[jt]s$/.test(args.importer)
        ? { path: "cron", namespace: "tern-stub" }
        : undefined,
    );
    // Storage drivers and the Fargate environment import their cloud SDK dynamically, on first
    // I/O, which never happens inside a bundle (the runner rebuilds its own storage from the flow
    // version; environments run in the agent). Leaving those imports
    // out keeps a flow that names an S3Storage from carrying the S3 SDK. A flow's own tasks that
    // import an SDK still get it inlined: only dynamic imports made by tern's driver files are left
    // out (their static imports, such as the options' schema library, are inlined).
    build.onResolve({ filter: /^[^./]/ }, (args) =>
      args.kind === "dynamic-import" &&
      /[\\/](storage-cloud|storage-git|storage-docker|env-fargate)[\\/](src|dist)[\\/][^\\/]+\.[jt]s$/.test(
        args.importer,
      ) &&
      !args.path.startsWith("@tern/")
        ? { path: args.path, external: true }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "tern-stub" }, (args) => ({
      contents:
        args.path === "cron"
          ? "export function cronJob() { const none = () => { throw new Error('schedule ticks are computed by agents, not inside a flow bundle'); }; return { nextRuns: none, previousRuns: none }; }"
          : "export async function registerFlow(flow) { throw new Error('flow.register() cannot run inside a flow bundle (flow \"' + flow.name + '\"): register from CI or a script, and guard the call so that loading the file does not run it.'); }",
      loader: "js",
    }));
  },
};

/** Lets CommonJS code in an ES module output (inlined dependencies, a flow's own `require()`) call require(). */
export const REQUIRE_BANNER =
  "import { createRequire as __ternCreateRequire } from 'node:module'; const require = __ternCreateRequire(import.meta.url);";

/** tern's own native or build-time dependencies: never inlined (and tree-shaken away when unused). */
const ALWAYS_EXTERNAL = ["better-sqlite3", "esbuild"];

/**
 * The export conditions packages are resolved with. A published tern runs from `dist/` and
 * resolves a flow's imports as the user's project does (each package's published `exports`).
 * Only when tern itself runs from this repository's TypeScript sources (its development
 * workspace, where packages export `src/` under `@tern/source`) do flows get the sources too.
 */
export const BUNDLE_CONDITIONS: readonly string[] = import.meta.url.endsWith(".ts") ? ["@tern/source"] : [];

/**
 * What the paths in a bundle's source map (`sources`, relative to the flow's package) are
 * prefixed with: stack traces name `project:src/flow.ts:12:9`, a file of the flow's package, not
 * a path of the machine that registered it nor of the runner's deleted cache file.
 */
export const SOURCE_ROOT = "project:";

/**
 * Bundles a flow module into one ESM file for Node 20 with its dependencies inlined (tern
 * included, so a registered flow runs with the tern it was registered with), and its source map
 * (the mappings only, no source text) inlined in its last line: covered by the bundle's sha256,
 * checked before anything is imported, with no other object to store, fetch or clean up.
 */
export async function bundleFlowModule(
  file: string,
  options: BundleOptions = {},
): Promise<{ bytes: Uint8Array; sha256: string }> {
  try {
    await access(file);
  } catch (error) {
    throw new BundleError(`Flow file ${file} does not exist or cannot be read. Check the path.`, { cause: error });
  }
  const esbuild = await import("esbuild");
  const root = await packageRoot(file);
  let result: Awaited<ReturnType<typeof esbuild.build>>;
  try {
    result = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      write: false,
      platform: "node",
      format: "esm",
      target: "node20",
      conditions: [...BUNDLE_CONDITIONS],
      external: [...ALWAYS_EXTERNAL, ...(options.external ?? [])],
      banner: { js: REQUIRE_BANNER },
      metafile: true,
      legalComments: "none",
      // Sources relative to `root` (the output's directory), under SOURCE_ROOT.
      sourcemap: "inline",
      sourcesContent: false,
      sourceRoot: SOURCE_ROOT,
      outfile: join(root, "bundle.mjs"),
      plugins: [withoutRegistration],
      logLevel: "silent",
      // Paths in the bundle are relative to this directory: the flow's package, not the current
      // directory, so registering from anywhere gives the same bytes (and hash).
      absWorkingDir: root,
    });
  } catch (error) {
    throw esbuildError(file, error, root);
  }
  checkModuleFormat(file, result.metafile, root);
  const output = result.outputFiles?.[0];
  if (output === undefined) throw new BundleError(`Bundling ${file} produced no output.`);
  const bytes = output.contents;
  return { bytes, sha256: sha256Hex(bytes) };
}

/**
 * A {@link BundleError} listing esbuild's first errors with their file (absolute: esbuild names
 * it relative to `root`, its working directory), line and source line.
 */
export function esbuildError(file: string, error: unknown, root: string): BundleError {
  const errors = (
    error as {
      errors?: Array<{
        text: string;
        location?: { file: string; line: number; column: number; lineText: string } | null;
      }>;
    }
  ).errors;
  if (errors !== undefined && errors.length > 0) {
    const lines = errors.slice(0, 5).map((e) => {
      const at = e.location ? `${resolve(root, e.location.file)}:${e.location.line}:${e.location.column + 1}: ` : "";
      const source = e.location ? `\n    ${e.location.lineText}` : "";
      return `${at}${e.text}${source}`;
    });
    return new BundleError(`Could not bundle ${file}:\n  ${lines.join("\n  ")}`, { cause: error });
  }
  return new BundleError(`Could not bundle ${file}: ${(error as Error).message}`, { cause: error });
}

/**
 * Refuses a flow file written as a CommonJS module (`module.exports`, `exports.flow = ...`): its
 * flows are no ES module exports, which is how tern finds a flow in its file and in its bundle.
 * `result.metafile` is esbuild's, built with `absWorkingDir: root`.
 */
export function checkModuleFormat(
  file: string,
  metafile: { inputs: Record<string, { format?: string }> } | undefined,
  root: string,
): void {
  const entry = metafile?.inputs[relative(root, resolve(file)).split(sep).join("/")];
  if (entry?.format === "cjs") {
    throw new BundleError(
      `${file} is a CommonJS module (it assigns module.exports or exports): tern finds flows by their ES module exports. Write the file with import and export (export const flow = new Flow(...)); it can keep its extension, also in a CommonJS project, since tern compiles it.`,
    );
  }
}

/** The nearest directory above `file` with a package.json (the file's own directory if none). */
export async function packageRoot(file: string): Promise<string> {
  const start = dirname(resolve(file));
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      await access(join(dir, "package.json"));
      return dir;
    } catch {
      if (dirname(dir) === dir) return start;
    }
  }
}

const LOADING = Symbol.for("tern.loadingBundle");

/** Whether a bundle is being imported (by registration or a runner) in this process. */
export function isLoadingBundle(): boolean {
  return ((globalThis as Record<symbol, number | undefined>)[LOADING] ?? 0) > 0;
}

/**
 * Imports verified bundle bytes from a private file under `cacheDir`, removed once imported.
 * Node's source maps are turned on first, so that the bundle's inline map (read as Node compiles
 * the module) makes stack traces name the user's files and lines.
 */
export async function importBundle(
  bytes: Uint8Array,
  sha256: string,
  cacheDir: string,
): Promise<Record<string, unknown>> {
  // The verified bytes go to a file only this process can write (a fresh 0700 directory), which
  // is imported and then removed: nothing can swap the file between the check and the import.
  await mkdir(cacheDir, { recursive: true });
  const dir = await mkdtemp(join(cacheDir, "load-"));
  const file = join(dir, `${sha256}.mjs`);
  const global = globalThis as Record<symbol, number | undefined>;
  global[LOADING] = (global[LOADING] ?? 0) + 1;
  try {
    await writeFile(file, bytes, { mode: 0o600, flag: "wx" });
    process.setSourceMapsEnabled(true);
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw new BundleError(`Importing the flow bundle ${sha256} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    global[LOADING] = (global[LOADING] ?? 1) - 1;
    await rm(dir, { recursive: true, force: true });
  }
}
