/**
 * The build step of `@tern/infra` (its `build` script, and `build` in cdk.json before every
 * synth): bundles each handler of `@tern/lambda` from its sources into
 * `assets/handlers/<name>/index.mjs` (and its source map), which `TernHandlers` deploys.
 * Run with `--conditions=@tern/source`.
 */
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { HANDLER_ASSETS, HANDLER_NAMES } from "../lib/handler-code.js";

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
      // The Lambda runtime provides AWS SDK v3; better-sqlite3 and esbuild are never loaded in Lambda.
      external: ["@aws-sdk/*", "@smithy/*", "better-sqlite3", "esbuild"],
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
} finally {
  await rm(staging, { recursive: true, force: true });
}
