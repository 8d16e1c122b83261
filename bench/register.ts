/**
 * `pnpm bench register`: 50 small flows (one file each) registered cold into a fresh embedded
 * home, then registered again unchanged. Beside them, the baseline: bundling the same 50 files
 * with esbuild alone, the part of registration tern cannot skip.
 *
 * Prints one JSON line:
 * {"name","flows","ms_per_flow_cold","ms_per_flow_unchanged","bytes_uploaded_cold",
 *  "bytes_uploaded_unchanged","baseline_bundle_ms_per_flow"}
 * bytes_uploaded_unchanged is counted at the blob store and must be 0.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type Flow, LocalStorage } from "@tern/core";
import { type BlobStore, bundleFlowModule, LocalBlobStore, type PutOptions } from "@tern/core/plugin";
import { SqliteBackend } from "@tern/core/runtime";

const FLOWS = 50;

/** A LocalStorage whose blob store counts the bytes actually written. */
class CountingStorage extends LocalStorage {
  static override readonly type = "LocalStorage";
  bytesWritten = 0;

  protected override createBlobStore(): BlobStore {
    const inner = new LocalBlobStore(this.directory as string);
    const put = inner.put.bind(inner);
    inner.put = async (key: string, body: Uint8Array, options: PutOptions) => {
      const outcome = await put(key, body, options);
      if (outcome === "created") this.bytesWritten += body.byteLength;
      return outcome;
    };
    return inner;
  }
}

function flowSource(i: number): string {
  return `import { Flow, task } from "@tern/core";

const double = task("double-${i}", (n: number) => n * 2);
const add = task("add-${i}", (a: number, b: number) => a + b);

export const flow = new Flow("bench-flow-${i}", {}, () => ({ out: add(double(${i}), ${i}) }));
`;
}

export async function main(): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  // Inside the repository, so the generated files resolve @tern/core like user code does.
  const dir = join(here, ".generated", "register");
  const home = await mkdtemp(join(tmpdir(), "tern-bench-register-"));
  process.env.TERN_HOME = home;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < FLOWS; i++) {
    const file = join(dir, `flow-${i}.ts`);
    await writeFile(file, flowSource(i));
    files.push(file);
  }
  const flows: Flow[] = [];
  for (const file of files) flows.push(((await import(pathToFileURL(file).href)) as { flow: Flow }).flow);

  const backend = await SqliteBackend.open({ path: join(home, "state.db") });
  const storage = new CountingStorage({ directory: join(home, "storage") });
  try {
    const register = async () => {
      const t0 = performance.now();
      const statuses = new Set<string>();
      for (const flow of flows) statuses.add((await flow.register("bench", { backend, storage })).status);
      return { ms: performance.now() - t0, statuses };
    };
    const cold = await register();
    const coldBytes = storage.bytesWritten;
    storage.bytesWritten = 0;
    const unchanged = await register();
    if (!cold.statuses.has("new") || cold.statuses.size !== 1)
      throw new Error("cold registration did not create versions");
    if (!unchanged.statuses.has("unchanged") || unchanged.statuses.size !== 1) {
      throw new Error(`re-registration was not unchanged: ${[...unchanged.statuses].join(", ")}`);
    }

    const t0 = performance.now();
    for (const file of files) await bundleFlowModule(file);
    const baselineMs = performance.now() - t0;

    console.log(
      JSON.stringify({
        name: "register",
        flows: FLOWS,
        ms_per_flow_cold: round(cold.ms / FLOWS),
        ms_per_flow_unchanged: round(unchanged.ms / FLOWS),
        bytes_uploaded_cold: coldBytes,
        bytes_uploaded_unchanged: storage.bytesWritten,
        baseline_bundle_ms_per_flow: round(baselineMs / FLOWS),
        node: process.version,
      }),
    );
  } finally {
    await backend.close();
    await rm(home, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
