import { join } from "node:path";
import { MemoryStorage } from "@tern/core";
import { SqliteBackend } from "@tern/core/runtime";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { scaled } from "../fixtures/param-flows.js";
import { nightly } from "../fixtures/scheduled-flows.js";

const home = useTempTernHome("tern-schedule-manifest-");
let backend: SqliteBackend;
beforeEach(async () => {
  backend = await SqliteBackend.open({ path: join(home.path, "state", "tern.db") });
});
afterEach(() => backend.close());

describe("a flow's schedules in its manifest", () => {
  it("records every schedule as checked, and nothing for a flow without one", async () => {
    const storage = new MemoryStorage({ name: "schedule-manifest" });
    const result = await nightly.register("proj", { backend, storage });
    const manifest = await storage.readManifest(result.location, { expectedHash: result.hash });
    expect(manifest.flow.schedules).toEqual([
      { name: "cron 0 3 * * * Europe/Berlin", catchUp: "latest", cron: "0 3 * * *", timezone: "Europe/Berlin" },
      {
        name: "every 15m",
        catchUp: "none",
        parameters: { n: 5 },
        every: "15m",
        everyMs: 900_000,
        anchor: "1970-01-01T00:00:00.000Z",
      },
    ]);
    // The bundle leaves croner out (agents compute ticks), and still defines the flow's schedules.
    const bundle = Buffer.from(await storage.blobs.get(manifest.bundle.key)).toString("utf8");
    expect(bundle).not.toContain("fixedTimeRule");
    const { flow: loaded } = await storage.load(result.location, { expectedHash: result.hash });
    expect(loaded.schedules.map((s) => s.name)).toEqual(["cron 0 3 * * * Europe/Berlin", "every 15m"]);
    const other = new MemoryStorage({ name: "schedule-manifest-plain" });
    other.add(scaled);
    const [plain] = await other.build();
    expect(plain?.manifest.flow).not.toHaveProperty("schedules");
  });

  it("makes a changed schedule a new version, and an unchanged one unchanged", async () => {
    const storage = new MemoryStorage({ name: "schedule-versions" });
    expect(await nightly.register("proj", { backend, storage })).toMatchObject({ version: 1, status: "new" });
    expect(await nightly.register("proj", { backend, storage })).toMatchObject({ version: 1, status: "unchanged" });
    process.env.TERN_TEST_NIGHTLY_CRON = "0 4 * * *";
    try {
      // The same module imported again: the same code, the first schedule at 04:00.
      const { nightly: atFour } = (await import(`../fixtures/scheduled-flows.js?${"at-four"}`)) as {
        nightly: typeof nightly;
      };
      expect(atFour.schedules[0]).toMatchObject({ cron: "0 4 * * *" });
      // A storage object holds one flow of a name; another on the same store, as a second CI job.
      const second = await atFour.register("proj", {
        backend,
        storage: new MemoryStorage({ name: "schedule-versions" }),
      });
      expect(second).toMatchObject({ version: 2, status: "new" });
      const first = await backend.getFlowVersion("proj", "nightly", 1);
      const [before, after] = await Promise.all([
        storage.readManifest(first?.location as string, { expectedHash: first?.manifestHash as string }),
        storage.readManifest(second.location, { expectedHash: second.hash }),
      ]);
      expect(after.bundle).toEqual(before.bundle);
    } finally {
      delete process.env.TERN_TEST_NIGHTLY_CRON;
    }
  });
});
