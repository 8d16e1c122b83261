/**
 * Benchmark entry point: `pnpm bench <name>` runs `bench/<name>.ts`, which prints one JSON
 * line per case. Each benchmark compares tern against a baseline measured in the same process.
 */
import { readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// As in the CLI: the SDK's notice about future Node versions would otherwise fill the output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts" && !/^storage-.+\.ts$/.test(f))
  .map((f) => basename(f, ".ts"))
  .sort();

const name = process.argv[2];
if (name === undefined || name === "--help" || name === "-h") {
  console.error(`Usage: pnpm bench <name>\nBenchmarks: ${available.join(", ")}`);
  process.exit(name === undefined ? 2 : 0);
}
if (!available.includes(name)) {
  console.error(`Unknown benchmark "${name}". Benchmarks: ${available.join(", ")}.`);
  process.exit(2);
}
const module = (await import(pathToFileURL(join(here, `${name}.ts`)).href)) as { main(args: string[]): Promise<void> };
await module.main(process.argv.slice(3));
