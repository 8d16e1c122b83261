import type { RunRecord } from "@tern/core/plugin";
import { describe, expect, it } from "vitest";
import { keeperVerdict, workerExecArgv } from "../../src/agent/lease-keeper.js";

const run = (state: RunRecord["state"], owner?: string) =>
  ({
    id: "r1",
    state,
    revision: 4,
    updatedAtMs: 0,
    ...(owner === undefined ? {} : { lease: { owner, expiresAtMs: 60_000 } }),
  }) as RunRecord;

describe("the lease keeper's worker", () => {
  it("drops the flags about the main script's input, keeps the others", () => {
    expect(workerExecArgv(["--input-type=module", "-e", "import('x')", "--conditions=@tern/source"])).toEqual([
      "--conditions=@tern/source",
    ]);
    expect(workerExecArgv(["--input-type", "module", "--eval", "1", "--import", "tsx", "--print=2"])).toEqual([
      "--import",
      "tsx",
    ]);
  });
});

describe("keeperVerdict", () => {
  const me = "runner:h:1";
  it.each([
    ["a run it holds", run("Running", me), "renew"],
    ["a run being cancelled that it holds", run("Cancelling", me), "cancel"],
    ["a cancel that cleared the lease", run("Cancelling"), "cancel"],
    ["a run another runner holds", run("Running", "runner:h:2"), "lost"],
    ["a run that ended", run("Failed"), "lost"],
    ["a run whose lease was cleared", run("Running"), "lost"],
  ])("%s", (_what, record, kind) => {
    expect(keeperVerdict(record, me).kind).toBe(kind);
  });
  it("says a run that is gone is lost", () => {
    expect(keeperVerdict(undefined, me)).toEqual({ kind: "lost", reason: "the run is gone from the backend" });
  });
});
