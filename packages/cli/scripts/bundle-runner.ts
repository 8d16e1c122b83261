/**
 * Builds the runner bundle: `src/runner.ts` with everything it imports (the CLI, core, the
 * DynamoDB backend, the cloud storages, the Fargate environment, the AWS SDKs) as one ESM file
 * that runs on a stock Node image. FargateTaskEnvironment's bootstrap downloads it, checks its
 * sha256 and imports it (see packages/env-fargate/README.md).
 *
 * better-sqlite3 (the embedded backend) and esbuild (registering flows) stay external: both are
 * imported only on first use, and a runner on Fargate uses neither.
 *
 * @example
 * const { sha256, bytes } = await bundleRunner("infra/assets/runner/runner.mjs");
 *
 * Or from a shell: `node --import tsx packages/cli/scripts/bundle-runner.ts <outFile>`.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ENTRY = fileURLToPath(new URL("../src/runner.ts", import.meta.url));

/** Packages the bundle leaves as imports: loaded lazily, never by a runner on Fargate. */
export const RUNNER_EXTERNAL: readonly string[] = ["better-sqlite3", "esbuild"];

// CommonJS packages inlined into an ESM file still call require() for Node's built-ins.
const BANNER =
  'import { createRequire as __ternCreateRequire } from "node:module";\nconst require = __ternCreateRequire(import.meta.url);';

/** Writes the runner bundle to `outFile` (creating its folder); resolves to its sha256 (hex) and size. */
export async function bundleRunner(outFile: string): Promise<{ sha256: string; bytes: number }> {
  const esbuild = await import("esbuild");
  const out = resolve(outFile);
  await mkdir(dirname(out), { recursive: true });
  const result = await esbuild.build({
    entryPoints: [ENTRY],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["@tern/source"],
    external: [...RUNNER_EXTERNAL],
    banner: { js: BANNER },
    minify: true,
    legalComments: "none",
    logLevel: "silent",
  });
  if (result.errors.length > 0) {
    throw new Error(`bundling the runner failed: ${result.errors.map((e) => e.text).join("; ")}`);
  }
  const bytes = await readFile(out);
  return { sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outFile = process.argv[2];
  if (outFile === undefined) {
    process.stderr.write("usage: bundle-runner.ts <outFile>\n");
    process.exitCode = 2;
  } else {
    const { sha256, bytes } = await bundleRunner(outFile);
    process.stdout.write(`${outFile}: ${bytes} bytes, sha256 ${sha256}\n`);
  }
}
