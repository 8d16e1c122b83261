import { NotFoundError, TernError } from "@tern/core";
import { type Backend, BackendError, RunConflictError } from "@tern/core/plugin";
import { describe, expect, it } from "vitest";
import { parseRules } from "../../src/rules.js";
import type { Runtime } from "../../src/runtime.js";
import { isPassing, startRuns } from "../../src/trigger-runs.js";

const rules = parseRules(
  JSON.stringify([
    { name: "missing", flow: "not-registered", pattern: { source: ["x"] } },
    { name: "throttled", flow: "etl", pattern: { source: ["x"] } },
  ]),
  "test",
);

/** A runtime whose backend fails `getFlowVersion` as each rule's flow says. */
function runtime(failures: Record<string, Error>): Runtime {
  const backend = {
    url: "dynamodb://t",
    getFlowVersion: async (_project: string, flow: string) => {
      throw failures[flow] ?? new Error(`no failure for ${flow}`);
    },
  } as unknown as Backend;
  return { backend, agent: {} as Runtime["agent"], rules, config: {} as Runtime["config"] };
}

describe("startRuns", () => {
  it("reports a rule whose flow is not registered, and throws (so the event comes again) when the table fails", async () => {
    const notFound = new NotFoundError(
      "flowVersion",
      "default/not-registered",
      "Flow not-registered is not registered.",
    );
    const throttled = new BackendError("DynamoDB backend: ProvisionedThroughputExceededException", {
      retryable: true,
    });
    await expect(
      startRuns(runtime({ "not-registered": notFound, etl: throttled }), rules, { source: "x" }, "eventbridge:1"),
    ).rejects.toBe(throttled);
    const [missing] = await startRuns(
      runtime({ "not-registered": notFound }),
      [rules[0]!],
      { source: "x" },
      "eventbridge:1",
    );
    expect(missing).toMatchObject({
      rule: "missing",
      dispatch: "error",
      reason: "Flow not-registered is not registered.",
    });
  });

  it("counts errors marked retryable where they were made, and anything unforeseen, as passing; the rest not", () => {
    expect(isPassing(new BackendError("throttled", { retryable: true }))).toBe(true);
    // Whatever its code: a storage driver's 503 is STORAGE_UNAVAILABLE, not in any list here.
    expect(isPassing(new TernError("STORAGE_UNAVAILABLE", "S3 get: 503", { retryable: true }))).toBe(true);
    expect(isPassing(new RunConflictError("r", 1, 2))).toBe(true);
    expect(isPassing(new Error("socket hang up"))).toBe(true);
    expect(isPassing(new BackendError("access denied on table t"))).toBe(false);
    expect(isPassing(new TernError("STORAGE_ACCESS", "S3 denied s3:GetObject"))).toBe(false);
    expect(isPassing(new NotFoundError("flowVersion", "p/f", "not registered"))).toBe(false);
  });
});
