/** A state.db written the way tern writes it, for the CLI tests that read or damage one. */
import type { RunLogRecord } from "@tern/core/plugin";
import { SqliteBackend } from "@tern/core/runtime";
import { registerTestFlow } from "@tern/test-support/flow-versions";

/**
 * Writes the SQLite state at `path` with a version of flow "etl" and one run per entry of
 * `counts`, each with that many log records made by `record` (appended a thousand at a time, as
 * a runner flushes them), and closes it. Resolves the run ids.
 */
export async function writeRunsWithLogs(
  path: string,
  counts: readonly number[],
  record: (runId: string, n: number) => RunLogRecord,
): Promise<string[]> {
  const backend = await SqliteBackend.open({ path });
  try {
    await registerTestFlow(backend, {
      project: "default",
      location: "flows/etl/manifest.json",
      manifestHash: "a".repeat(64),
    });
    const ids: string[] = [];
    for (const count of counts) {
      const { run } = await backend.createRun({ project: "default", flow: "etl" });
      for (let start = 0; start < count; start += 1000) {
        const n = Math.min(1000, count - start);
        await backend.appendLogs(
          run.id,
          Array.from({ length: n }, (_, i) => record(run.id, start + i)),
        );
      }
      ids.push(run.id);
    }
    return ids;
  } finally {
    await backend.close();
  }
}
