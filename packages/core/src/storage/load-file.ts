import { access, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { withCompiledSource } from "../flow/flow.js";
import {
  BUNDLE_CONDITIONS,
  BundleError,
  checkModuleFormat,
  esbuildError,
  packageRoot,
  REQUIRE_BANNER,
} from "./bundle.js";

/**
 * Imports a user's flow file, TypeScript (`.ts`, `.mts`, `.cts`) or JavaScript, whatever the
 * module type of its project (ESM or CommonJS), without a runtime TypeScript hook.
 *
 * esbuild compiles the file and the files it imports by relative path into one ESM module and
 * leaves every package import (`@tern/core` included) to Node. The module is written under the
 * project's `node_modules/.cache/tern/`, so those imports resolve exactly as they do for the
 * user's own code, to the same copies the caller uses, then imported and removed.
 * `import.meta.url`, `.filename` and `.dirname` keep naming the original file, and flows defined
 * in it take the original file as their source, already while it loads (a file that builds its
 * storage at its top level bundles the user's file). An inline source map, with Node's source maps
 * turned on, makes stack traces name the original files and lines, not the removed module.
 */
export async function importFlowFile(file: string): Promise<Record<string, unknown>> {
  const path = resolve(file);
  try {
    await access(path);
  } catch (error) {
    throw new BundleError(`Flow file ${path} does not exist or cannot be read. Check the path.`, { cause: error });
  }
  const root = await packageRoot(path);
  const esbuild = await import("esbuild");
  let code: string;
  let metafile: { inputs: Record<string, { format?: string }> } | undefined;
  try {
    const result = await esbuild.build({
      entryPoints: [path],
      bundle: true,
      packages: "external",
      write: false,
      platform: "node",
      format: "esm",
      target: "node20",
      conditions: [...BUNDLE_CONDITIONS],
      define: {
        "import.meta.url": JSON.stringify(pathToFileURL(path).href),
        "import.meta.filename": JSON.stringify(path),
        "import.meta.dirname": JSON.stringify(dirname(path)),
      },
      // A flow may require() packages too (resolved from the project, as its imports are).
      banner: { js: REQUIRE_BANNER },
      metafile: true,
      logLevel: "silent",
      absWorkingDir: root,
      // Sources are relative to `root`; the map is read on this machine, where they are.
      sourcemap: "inline",
      sourcesContent: false,
      sourceRoot: `${pathToFileURL(root).href}/`,
    });
    code = result.outputFiles?.[0]?.text ?? "";
    metafile = result.metafile;
  } catch (error) {
    throw esbuildError(path, error, root);
  }
  checkModuleFormat(path, metafile, root);
  const cache = join(root, "node_modules", ".cache", "tern");
  let dir: string;
  try {
    await mkdir(cache, { recursive: true });
    dir = await mkdtemp(join(cache, "load-"));
  } catch (error) {
    throw new BundleError(
      `Could not load ${path}: tern compiles it into ${cache} before importing it, and that directory cannot be written (${(error as Error).message}). Make it writable.`,
      { cause: error },
    );
  }
  const compiled = join(dir, "flow.mjs");
  try {
    await writeFile(compiled, code, { mode: 0o600 });
    process.setSourceMapsEnabled(true);
    try {
      return await withCompiledSource(
        compiled,
        path,
        async () => (await import(pathToFileURL(compiled).href)) as Record<string, unknown>,
      );
    } catch (error) {
      throw loadError(path, compiled, error);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Why importing the compiled flow failed, in terms of the user's file: the compiled module's
 * path (removed by now) becomes the original's, and a package that is not installed is named
 * with the command that installs it.
 */
function loadError(path: string, compiled: string, error: unknown): BundleError {
  const message = String((error as Error)?.message ?? error)
    .replaceAll(pathToFileURL(compiled).href, pathToFileURL(path).href)
    .replaceAll(compiled, path);
  const missing =
    (error as { code?: string })?.code === "ERR_MODULE_NOT_FOUND"
      ? /Cannot find package '([^']+)'/.exec(message)
      : null;
  const fix = missing === null ? "" : `. Install it in the flow's project (npm i ${missing[1]}).`;
  return new BundleError(`Could not load ${path}: ${message}${fix}`, { cause: error });
}
