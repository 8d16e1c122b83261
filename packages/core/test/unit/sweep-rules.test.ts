import type { RunRecord } from "@tern/core/plugin";
import { describe, expect, it } from "vitest";
import { decideSweep, type SweepFacts } from "../../src/agent/sweep-rules.js";

const AT = Date.UTC(2026, 11, 2, 12, 0, 0);

function run(state: RunRecord["state"], extra: Partial<RunRecord> = {}): RunRecord {
  return {
    id: "r1",
    project: "p",
    flow: "f",
    version: 1,
    state,
    revision: 3,
    labels: [],
    parameters: {},
    scheduledAtMs: AT,
    createdAtMs: AT,
    updatedAtMs: AT,
    attempts: 1,
    ...extra,
  } as RunRecord;
}

const facts = (extra: Partial<SweepFacts> = {}): SweepFacts => ({
  leaseLost: undefined,
  stale: false,
  graceMs: 300_000,
  maxAttempts: 3,
  ...extra,
});

const runnerLease = { owner: "runner:h:1", expiresAtMs: AT + 60_000 };
const LOST = "its runner (h:1) stopped renewing its lease: no renewal for 61 s (the lease lasts 60 s).";

describe("decideSweep: the generic rules", () => {
  it.each([
    ["a Running run whose lease holds", run("Running", { lease: runnerLease }), facts({ stale: true }), undefined],
    [
      "a Running run whose lease was lost",
      run("Running", { lease: runnerLease }),
      facts({ leaseLost: LOST }),
      { to: "Failed", reason: LOST },
    ],
    [
      "a Cancelling run whose runner's lease was lost",
      run("Cancelling", { lease: runnerLease }),
      facts({ leaseLost: LOST }),
      { to: "Cancelled", reason: `cancelled; ${LOST}` },
    ],
    ["a Cancelling run with no runner, within the grace", run("Cancelling"), facts(), undefined],
    [
      "a Cancelling run with no runner, past the grace",
      run("Cancelling"),
      facts({ stale: true }),
      {
        to: "Cancelled",
        reason: "cancelled at 2026-12-02T12:00:00.000Z before a runner started it, and none started within 300 s.",
      },
    ],
    ["a Submitted run within the grace", run("Submitted"), facts(), undefined],
    [
      "a Submitted run under an agent's claim",
      run("Submitted", { lease: { owner: "agent-1", expiresAtMs: AT } }),
      facts({ stale: true }),
      undefined,
    ],
    [
      "a Submitted run whose launch was never recorded",
      run("Submitted"),
      facts({ stale: true }),
      { to: "Scheduled", reason: expect.stringMatching(/no launch was recorded .* handed back for another attempt$/) },
    ],
    [
      "the same, at its last attempt",
      run("Submitted", { attempts: 3 }),
      facts({ stale: true }),
      { to: "Failed", reason: expect.stringMatching(/after 3 attempts\. Check the agents' logs\.$/) },
    ],
    [
      "a Submitted run with launch bookkeeping only",
      run("Submitted", { deployment: { kind: "ecs-task", launched: false } }),
      facts({ stale: true }),
      { to: "Scheduled", reason: expect.stringMatching(/handed back/) },
    ],
    [
      "a Submitted run whose launch was recorded",
      run("Submitted", { deployment: { kind: "process", pid: 42 } }),
      facts({ stale: true }),
      { to: "Failed", reason: "it was submitted at 2026-12-02T12:00:00.000Z but no runner started it within 300 s." },
    ],
  ])("%s", (_what, record, given, expected) => {
    expect(decideSweep(record, given)).toEqual(expected);
  });
});
