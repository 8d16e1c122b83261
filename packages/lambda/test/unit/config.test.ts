import { isTernError, TernError } from "@tern/core";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { parseRules, RulesError } from "../../src/rules.js";
import { checkSignature, signRequest } from "../../src/signature.js";
import { configProblems } from "./config-problems.js";

const FULL = {
  TERN_BACKEND: "dynamodb://tern-state?region=eu-west-1",
  TERN_ECS_CLUSTER: "tern",
  TERN_ECS_SUBNETS: "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
  TERN_ECS_SECURITY_GROUPS: "sg-0123456789abcdef0",
  TERN_ECS_TASK_ROLE_ARN: "arn:aws:iam::123456789012:role/tern-task",
  TERN_ECS_EXECUTION_ROLE_ARN: "arn:aws:iam::123456789012:role/tern-execution",
  TERN_RUNNER_IMAGE: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1",
  TERN_LOG_GROUP: "/tern/runs",
  TERN_AGENT_LABELS: "prod, fargate",
  TERN_TRIGGER_RULES_URL: "s3://acme-tern-config/rules.json",
  TERN_CLOUDEVENTS_AUTH: "hmac",
  TERN_CLOUDEVENTS_SECRET_ARN: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tern-ce-AbCdEf",
};

const problems = configProblems;

describe("loadConfig", () => {
  it("reads a complete configuration", () => {
    const config = loadConfig(FULL, { ecs: true, rules: true, cloudEvents: true });
    expect(config).toMatchObject({
      backendUrl: FULL.TERN_BACKEND,
      labels: ["prod", "fargate"],
      safetyMarginMs: 15_000,
      submittedGraceMs: 300_000,
      rules: { s3: { bucket: "acme-tern-config", key: "rules.json" } },
      cloudEvents: { auth: "hmac", secretArn: FULL.TERN_CLOUDEVENTS_SECRET_ARN, toleranceSeconds: 300 },
    });
  });

  it("names every missing variable at once, for what the handler needs", () => {
    expect(problems({}, { ecs: true, rules: true, cloudEvents: true })).toEqual([
      expect.stringMatching(/^TERN_BACKEND is missing/),
      expect.stringMatching(/^TERN_ECS_CLUSTER is missing/),
      expect.stringMatching(/^TERN_ECS_SUBNETS is missing/),
      expect.stringMatching(/^TERN_ECS_EXECUTION_ROLE_ARN is missing/),
      expect.stringMatching(/^TERN_RUNNER_IMAGE is missing/),
      expect.stringMatching(/^TERN_LOG_GROUP is missing/),
      expect.stringMatching(/^TERN_TRIGGER_RULES \(JSON\) or TERN_TRIGGER_RULES_URL/),
      expect.stringMatching(/^TERN_CLOUDEVENTS_AUTH is missing/),
    ]);
    // The task-state handler needs less.
    expect(problems({ TERN_BACKEND: FULL.TERN_BACKEND }, {})).toEqual([]);
  });

  it("names every invalid value with what it must be", () => {
    const found = problems(
      {
        ...FULL,
        TERN_BACKEND: "sqlite:///tmp/state.db",
        TERN_ECS_SUBNETS: "subnet-1,subnet-0123456789abcdef0",
        TERN_ECS_TASK_ROLE_ARN: "tern-task",
        TERN_SAFETY_MARGIN_MS: "soon",
        TERN_CLOUDEVENTS_AUTH: "none",
      },
      { ecs: true },
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^TERN_BACKEND must be a dynamodb:\/\/.* \(got "sqlite:\/\/\/tmp\/state\.db"\)/),
        expect.stringMatching(/^TERN_ECS_SUBNETS must be a comma-separated list of ids/),
        expect.stringMatching(/^TERN_ECS_TASK_ROLE_ARN must be an IAM role ARN/),
        expect.stringMatching(/^TERN_SAFETY_MARGIN_MS must be an integer/),
        expect.stringMatching(/^TERN_CLOUDEVENTS_AUTH/),
      ]),
    );
    expect(found).toHaveLength(5);
    expect(() => loadConfig({ ...FULL, TERN_CLOUDEVENTS_SECRET_ARN: "" }, { cloudEvents: true })).toThrow(
      /TERN_CLOUDEVENTS_SECRET_ARN is missing: with hmac auth/,
    );
  });

  it("throws a ConfigError, one of tern's errors (code CONFIG)", () => {
    let thrown: unknown;
    try {
      loadConfig({}, {});
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect(thrown).toBeInstanceOf(TernError);
    expect(thrown).toMatchObject({ name: "ConfigError", code: "CONFIG", retryable: false });
    expect(isTernError(thrown, "CONFIG")).toBe(true);
  });
});

describe("loadConfig: the runner bundle", () => {
  const SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

  it("accepts the bundle with its sha256, or neither", () => {
    expect(
      problems(
        { ...FULL, TERN_RUNNER_BUNDLE: "s3://cdk-assets-eu/runner/a.mjs", TERN_RUNNER_BUNDLE_SHA256: SHA },
        { ecs: true },
      ),
    ).toEqual([]);
    expect(problems(FULL, { ecs: true })).toEqual([]);
  });

  it("names a bad value and what it must be, and half a pair", () => {
    expect(
      problems({ ...FULL, TERN_RUNNER_BUNDLE: "https://example.com/runner.mjs", TERN_RUNNER_BUNDLE_SHA256: "abc" }, {}),
    ).toEqual([
      'TERN_RUNNER_BUNDLE must be s3://<bucket>/<key>, the runner bundle object the stack deploys (got "https://example.com/runner.mjs")',
      `TERN_RUNNER_BUNDLE_SHA256 must be the runner bundle's sha256 (64 hex digits) (got "abc")`,
    ]);
    expect(problems({ ...FULL, TERN_RUNNER_BUNDLE: "s3://cdk-assets-eu/runner/a.mjs" }, {})).toEqual([
      expect.stringMatching(/^TERN_RUNNER_BUNDLE_SHA256 is missing: TERN_RUNNER_BUNDLE is set/),
    ]);
    expect(problems({ ...FULL, TERN_RUNNER_BUNDLE_SHA256: SHA }, {})).toEqual([
      expect.stringMatching(/^TERN_RUNNER_BUNDLE is missing: TERN_RUNNER_BUNDLE_SHA256 is set/),
    ]);
  });
});

describe("parseRules", () => {
  it("compiles rules and names the rule and field of any problem", () => {
    const [rule] = parseRules(
      JSON.stringify([{ flow: "ingest", pattern: { source: ["aws.s3"] }, parameters: { key: "$.detail.object.key" } }]),
      "test",
    );
    expect(rule).toMatchObject({ name: "ingest", project: "default", flow: "ingest" });
    expect(rule?.pattern.test({ source: "aws.s3" })).toBe(true);
    expect(() => parseRules("{", "TERN_TRIGGER_RULES")).toThrow(/TERN_TRIGGER_RULES are not JSON/);
    expect(() => parseRules("{}", "x")).toThrow(/must be a JSON array/);
    expect(() => parseRules(JSON.stringify([{ name: "r", pattern: {} }]), "x")).toThrow(RulesError);
    expect(() => parseRules(JSON.stringify([{ name: "r", flow: "f", pattern: {} }]), "x")).toThrow(
      /rule 0 \("r"\) in x: event pattern is an empty object/,
    );
    expect(() =>
      parseRules(JSON.stringify([{ flow: "f", pattern: { a: ["b"] }, parameters: { key: "detail.key" } }]), "x"),
    ).toThrow(/parameters\.key: must be a path into the event such as "\$\.detail\.object\.key"/);
    expect(() => parseRules(JSON.stringify([{ flow: "f", pattern: { a: ["b"] }, extra: 1 }]), "x")).toThrow(
      /rule 0 in x/,
    );
  });
});

describe("HMAC signatures", () => {
  const key = "k".repeat(32);
  const body = Buffer.from('{"id":"1"}');
  const now = 1_800_000_000;
  const headers = { "Content-Type": "application/json", "ce-id": "1", "ce-type": "com.acme.x", "ce-source": "/a" };
  const withSignature = (signature: string, over: Record<string, string> = {}) => ({
    ...headers,
    ...over,
    "X-Tern-Signature": signature,
  });

  it("accepts a fresh signature of the content type, ce-* headers and body, and refuses anything else, saying why", () => {
    const good = signRequest(key, headers, body, now);
    expect(checkSignature([key], withSignature(good), body, 300, now)).toBeUndefined();
    expect(checkSignature([key], headers, body, 300, now)).toMatch(/missing x-tern-signature/);
    expect(checkSignature([key], withSignature("v1=abc"), body, 300, now)).toMatch(/malformed/);
    expect(
      checkSignature([key], withSignature(signRequest("x".repeat(32), headers, body, now)), body, 300, now),
    ).toMatch(/does not match/);
    expect(checkSignature([key], withSignature(good), Buffer.from('{"id":"2"}'), 300, now)).toMatch(/does not match/);
    expect(checkSignature([key], withSignature(signRequest(key, headers, body, now - 301)), body, 300, now)).toMatch(
      /301 s from now .*replay/,
    );
    // The timestamp is signed: moving it forward breaks the signature.
    const old = signRequest(key, headers, body, now - 3600);
    expect(checkSignature([key], withSignature(old.replace(`t=${now - 3600}`, `t=${now}`)), body, 300, now)).toMatch(
      /does not match/,
    );
  });

  it("refuses a captured request replayed with another id, type, source or content type", () => {
    const good = signRequest(key, headers, body, now);
    const overrides: Array<Record<string, string>> = [
      { "ce-id": "2" },
      { "ce-type": "com.acme.y" },
      { "ce-source": "/b" },
      { "Content-Type": "application/cloudevents+json" },
      { "ce-subject": "added" },
    ];
    for (const over of overrides) {
      expect(checkSignature([key], withSignature(good, over), body, 300, now)).toMatch(/does not match/);
    }
    // Header names are case-insensitive and their order does not matter.
    const reordered = { "ce-source": "/a", "CE-TYPE": "com.acme.x", "content-type": "application/json", "ce-id": "1" };
    expect(checkSignature([key], { ...reordered, "x-tern-signature": good }, body, 300, now)).toBeUndefined();
  });

  it("accepts the previous key while a rotation is under way", () => {
    const previous = "p".repeat(32);
    expect(
      checkSignature([key, previous], withSignature(signRequest(previous, headers, body, now)), body, 300, now),
    ).toBeUndefined();
    expect(checkSignature([key], withSignature(signRequest(previous, headers, body, now)), body, 300, now)).toMatch(
      /does not match/,
    );
  });
});
