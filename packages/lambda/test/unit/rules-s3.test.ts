import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { isTernError } from "@tern/core";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { RulesError } from "../../src/rules.js";
import { loadRules } from "../../src/runtime.js";

const s3 = mockClient(S3Client);
const config = {
  backendUrl: "dynamodb://t?region=eu-west-1",
  labels: [],
  safetyMarginMs: 15_000,
  submittedGraceMs: 300_000,
  rules: { s3: { bucket: "cdk-assets", key: "abc.json" } },
};
const body = (text: string) => ({ Body: { transformToString: async () => text } as never });

beforeEach(() => s3.reset());

describe("trigger rules from S3 (TERN_TRIGGER_RULES_URL)", () => {
  it("reads and compiles them at cold start", async () => {
    s3.on(GetObjectCommand, { Bucket: "cdk-assets", Key: "abc.json" }).resolves(
      body(JSON.stringify([{ name: "r", flow: "f", pattern: { source: ["aws.s3"] } }])),
    );
    const rules = await loadRules(config);
    expect(rules.map((r) => r.name)).toEqual(["r"]);
    expect(rules[0]?.pattern.test({ source: "aws.s3" })).toBe(true);
  });

  it("names the object when it cannot be read, and the rule when one is bad", async () => {
    s3.on(GetObjectCommand).rejects(Object.assign(new Error("Access Denied"), { name: "AccessDenied" }));
    await expect(loadRules(config)).rejects.toThrow(
      /Could not read the trigger rules at s3:\/\/cdk-assets\/abc\.json: Access Denied/,
    );
    s3.on(GetObjectCommand).resolves(body(JSON.stringify([{ flow: "f", pattern: {} }])));
    const error = await loadRules(config).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RulesError);
    expect(error).toMatchObject({ name: "RulesError", code: "RULES", retryable: false });
    expect(isTernError(error, "RULES")).toBe(true);
    expect((error as Error).message).toMatch(/s3:\/\/cdk-assets\/abc\.json: event pattern is an empty object/);
  });
});
