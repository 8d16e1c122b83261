/**
 * The build step of `@tern/infra` (its `build` script, and `build` in cdk.json before every
 * synth): bundles each handler of `@tern/lambda` from its sources into
 * `assets/handlers/<name>/index.mjs` (and its source map), which `TernHandlers` deploys, and the
 * runner (the CLI's `bundleRunner`) into `assets/runner/runner.mjs`, which `TernRunner` deploys
 * as an S3 asset for tasks to download. Run with `--conditions=@tern/source`.
 */
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import { HANDLER_ASSETS, HANDLER_NAMES } from "../lib/handler-code.js";
import { RUNNER_BUNDLE } from "../lib/runner-image.js";

/**
 * Packages the handlers bundle although they are AWS SDK packages. Whether the Lambda Node.js
 * runtime ships `@aws-sdk/s3-request-presigner` is not documented (AWS lists no set of included
 * packages and changes it without notice), so the presigner, which env-fargate loads to hand
 * tasks a URL of the runner bundle, goes into the bundle with everything it imports; the clients
 * (`@aws-sdk/client-*`) stay with the runtime.
 */
const BUNDLED_SDK_PACKAGES = ["@aws-sdk/s3-request-presigner"];
const SDK_PACKAGE = /^@(aws-sdk|smithy)\//;

/**
 * Leaves `@aws-sdk/*` and `@smithy/*` to the Lambda runtime, except the packages above and what
 * they import (found through the importing file's own node_modules path, so a package is bundled
 * whenever a bundled package imports it, and left out when only the rest of the code does).
 */
function awsSdkFromRuntime(): Plugin {
  return {
    name: "aws-sdk-from-runtime",
    setup(esbuild) {
      const bundledDirs = new Set<string>();
      esbuild.onResolve({ filter: SDK_PACKAGE }, async (args) => {
        if (args.pluginData === "tern-bundled-sdk") return undefined;
        const packageName = args.path.split("/").slice(0, 2).join("/");
        const fromBundled = [...bundledDirs].some((dir) => args.importer.startsWith(dir));
        if (!BUNDLED_SDK_PACKAGES.includes(packageName) && !fromBundled) return { path: args.path, external: true };
        const resolved = await esbuild.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          pluginData: "tern-bundled-sdk",
        });
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        const marker = `/node_modules/${packageName}/`;
        const at = resolved.path.lastIndexOf(marker);
        if (at >= 0) bundledDirs.add(resolved.path.slice(0, at + marker.length));
        return { path: resolved.path };
      });
    },
  };
}

const infra = fileURLToPath(new URL("..", import.meta.url));
await mkdir(HANDLER_ASSETS, { recursive: true });
// Bundles are written beside (at the same depth, so the source maps' relative paths hold), then
// renamed into place: a synth copying the assets meanwhile never reads half a file.
const staging = await mkdtemp(join(dirname(HANDLER_ASSETS), ".staging-"));
try {
  for (const name of HANDLER_NAMES) {
    await build({
      entryPoints: [`@tern/lambda/handlers/${name}`],
      absWorkingDir: infra,
      outfile: join(staging, name, "index.mjs"),
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      minify: true,
      sourcemap: true,
      mainFields: ["module", "main"],
      conditions: ["@tern/source"],
      // The Lambda runtime provides AWS SDK v3 (see awsSdkFromRuntime); better-sqlite3 and esbuild
      // are never loaded in Lambda.
      external: ["better-sqlite3", "esbuild"],
      plugins: [awsSdkFromRuntime()],
      banner: {
        js: "import { createRequire as __ternRequire } from 'node:module'; const require = __ternRequire(import.meta.url);",
      },
      logLevel: "warning",
    });
    await mkdir(join(HANDLER_ASSETS, name), { recursive: true });
    for (const file of ["index.mjs", "index.mjs.map"])
      await rename(join(staging, name, file), join(HANDLER_ASSETS, name, file));
    // On stderr: `cdk synth` runs this before the app and prints the template on stdout.
    console.error(relative(infra, join(HANDLER_ASSETS, name, "index.mjs")));
  }
  const { bundleRunner } = await import("@tern/cli/bundle-runner");
  const runner = await bundleRunner(join(staging, "runner", "runner.mjs"));
  await mkdir(dirname(RUNNER_BUNDLE), { recursive: true });
  await rename(join(staging, "runner", "runner.mjs"), RUNNER_BUNDLE);
  console.error(`${relative(infra, RUNNER_BUNDLE)} (${runner.bytes} bytes, sha256 ${runner.sha256})`);
} finally {
  await rm(staging, { recursive: true, force: true });
}
