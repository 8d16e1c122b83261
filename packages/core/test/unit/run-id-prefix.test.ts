import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend, RunRecord } from "@tern/core/plugin";
import { explainRun, requireRun, SqliteBackend } from "@tern/core/runtime";
import { registerTestFlow } from "@tern/test-support/flow-versions";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

let dir: string;
let backend: Backend;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tern-prefix-"));
  backend = await SqliteBackend.open({ path: join(dir, "state.db") });
  await registerTestFlow(backend);
});
afterEach(async () => {
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

/** A backend whose runs have the given ids (getRun and findRunIds only). */
function withIds(ids: readonly string[]): Backend {
  const runs = new Map(ids.map((id) => [id, { id } as RunRecord]));
  return {
    url: "memory://ids",
    getRun: async (id: string) => runs.get(id),
    findRunIds: async (prefix: string, limit: number) => ids.filter((id) => id.startsWith(prefix)).slice(0, limit),
  } as unknown as Backend;
}

describe("requireRun by id prefix", () => {
  it("finds a run by its full id and by the 8 characters agents print", async () => {
    const { run } = await backend.createRun({ project: "p", flow: "etl" });
    expect((await requireRun(backend, run.id)).id).toBe(run.id);
    expect((await requireRun(backend, run.id.slice(0, 8))).id).toBe(run.id);
    expect((await explainRun(backend, run.id.slice(0, 8))).runId).toBe(run.id);
  });

  it("refuses a prefix of several runs, listing them", async () => {
    const ids = ["9dc431b6-0000-4000-8000-000000000001", "9dc431b7-0000-4000-8000-000000000002"];
    await expect(requireRun(withIds(ids), "9dc431b")).rejects.toThrow(
      `Run id "9dc431b" is the start of more than one run (${ids.join(", ")}). Give more of the id.`,
    );
    expect((await requireRun(withIds(ids), "9dc431b7")).id).toBe(ids[1]);
  });

  it("says a prefix no run starts with does not exist, as a full id", async () => {
    await expect(requireRun(backend, "0123abcd")).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: expect.stringContaining("Run 0123abcd does not exist"),
    });
    await expect(requireRun(backend, "")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
