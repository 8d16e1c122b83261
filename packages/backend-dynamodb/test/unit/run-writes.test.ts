import { describe, expect, it } from "vitest";
import { claimUpdate, statesAllowedBefore, transitionUpdate } from "../../src/run-writes.js";

/** An expression with its placeholders replaced by names and JSON values, to read in assertions. */
function readable(update: {
  UpdateExpression: string;
  ConditionExpression: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}): { update: string; condition: string } {
  const fill = (text: string) =>
    text
      .replace(/#n\d+/g, (p) => update.ExpressionAttributeNames?.[p] ?? p)
      .replace(/:v\d+/g, (p) => JSON.stringify(update.ExpressionAttributeValues?.[p]));
  return { update: fill(update.UpdateExpression), condition: fill(update.ConditionExpression) };
}

const base = {
  expectedRevision: 4,
  reason: undefined,
  deployment: undefined,
  outputs: undefined,
  lease: undefined,
  nowMs: 1_000,
};

describe("transitionUpdate", () => {
  it("changes the state with a compare-and-swap on the revision and the states the move is allowed from", () => {
    const { update, condition } = readable(
      transitionUpdate({ ...base, before: { changingFrom: statesAllowedBefore("Running") }, to: "Running" }),
    );
    expect(condition).toBe('revision = 4 AND state IN ("Scheduled", "Submitted")');
    expect(update).toContain('SET state = "Running"');
    expect(update).toContain('history = list_append(history, [{"state":"Running","atMs":1000}])');
    expect(update).toContain('GSI2PK = "STATE#Running"');
    expect(update).toContain("revision = 5");
    expect(update).toMatch(/REMOVE reason, GSI1PK/);
  });

  it("puts a run handed back to Scheduled into the claim index again", () => {
    const { update } = readable(transitionUpdate({ ...base, before: { exact: "Submitted" }, to: "Scheduled" }));
    expect(update).toContain('GSI1PK = "SCHEDULED"');
    expect(update).not.toContain("REMOVE reason, GSI1PK");
  });

  it("patches a run in its state without a history entry, keeping its reason unless given one", () => {
    const kept = readable(
      transitionUpdate({ ...base, before: { exact: "Running" }, to: "Running", deployment: '{"pid":1}' }),
    );
    expect(kept.condition).toBe('revision = 4 AND state = "Running"');
    expect(kept.update).toBe('SET revision = 5, updatedAtMs = 1000, deployment = "{\\"pid\\":1}"');
    const replaced = readable(transitionUpdate({ ...base, before: { exact: "Running" }, to: "Running", reason: "hb" }));
    expect(replaced.update).toContain('reason = "hb"');
    expect(replaced.update).not.toContain("history");
  });

  it("clears the lease with lease: null and sets it when given", () => {
    const cleared = readable(transitionUpdate({ ...base, before: { exact: "Running" }, to: "Running", lease: null }));
    expect(cleared.update).toContain("REMOVE leaseOwner, leaseExpiresAtMs");
    const set = readable(
      transitionUpdate({
        ...base,
        before: { exact: "Running" },
        to: "Running",
        lease: { owner: "runner:1", expiresAtMs: 9 },
      }),
    );
    expect(set.update).toContain('leaseOwner = "runner:1", leaseExpiresAtMs = 9');
  });

  it("stores small outputs inline and large ones by reference, remembering the chunks it replaces", () => {
    const inline = readable(
      transitionUpdate({ ...base, before: { exact: "Running" }, to: "Success", outputs: { json: "{}" } }),
    );
    expect(inline.update).toContain("previousOutputsRef = if_not_exists(outputsRef, null)");
    expect(inline.update).toContain('outputs = "{}", outputsRef = null');
    const ref = { prefix: "OUT#x#", chunks: 4, bytes: 1_000_000 };
    const chunked = readable(
      transitionUpdate({ ...base, before: { exact: "Running" }, to: "Success", outputs: { ref } }),
    );
    expect(chunked.update).toContain(`outputsRef = ${JSON.stringify(ref)}`);
    expect(chunked.update).toMatch(/REMOVE .*outputs/);
  });
});

describe("claimUpdate", () => {
  it("takes the lease only if the run is still Scheduled at the revision read and its lease is absent or expired", () => {
    const { update, condition } = readable(
      claimUpdate({ revision: 2, attempts: 1, owner: "agent-1", leaseMs: 500, nowMs: 1_000 }),
    );
    expect(update).toBe(
      'SET leaseOwner = "agent-1", leaseExpiresAtMs = 1500, attempts = 2, revision = 3, updatedAtMs = 1000',
    );
    expect(condition).toBe(
      'revision = 2 AND state = "Scheduled" AND (attribute_not_exists(leaseOwner) OR leaseExpiresAtMs <= 1000)',
    );
  });
});

describe("statesAllowedBefore", () => {
  it("lists the states RUN_TRANSITIONS allows a move from", () => {
    expect(statesAllowedBefore("Submitted")).toEqual(["Scheduled"]);
    expect(statesAllowedBefore("Cancelled")).toEqual(["Scheduled", "Submitted", "Running", "Cancelling"]);
  });
});

describe("run retention", () => {
  it("sets the TTL attribute when a run ends, and only then", () => {
    const ended = readable(
      transitionUpdate({ ...base, before: { exact: "Running" }, to: "Success", expiresAtSeconds: 1_234 }),
    );
    expect(ended.update).toContain("expiresAt = 1234");
    const running = readable(
      transitionUpdate({ ...base, before: { exact: "Submitted" }, to: "Running", expiresAtSeconds: 1_234 }),
    );
    expect(running.update).not.toContain("expiresAt");
    const kept = readable(transitionUpdate({ ...base, before: { exact: "Running" }, to: "Failed", reason: "x" }));
    expect(kept.update).not.toContain("expiresAt");
  });
});
