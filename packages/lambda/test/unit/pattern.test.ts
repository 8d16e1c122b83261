import { isTernError } from "@tern/core";
import { describe, expect, it } from "vitest";
import { compilePattern, PatternError } from "../../src/pattern.js";

/** An S3 "Object Created" event as EventBridge delivers it (AWS's documented sample, abridged). */
const s3Event = {
  version: "0",
  id: "17793124-05d4-b198-2fde-7ededc63b103",
  "detail-type": "Object Created",
  source: "aws.s3",
  account: "123456789012",
  time: "2021-11-12T00:00:00Z",
  region: "ca-central-1",
  resources: ["arn:aws:s3:::example-bucket"],
  detail: {
    version: "0",
    bucket: { name: "example-bucket" },
    object: {
      key: "incoming/orders-2021-11-12.csv",
      size: 5,
      etag: "b1946ac92492d2347c6235b4d2611184",
      sequencer: "00617F08299329D189",
    },
    "request-id": "N4N7GDK58NMKJ12R",
    requester: "123456789012",
    "source-ip-address": "1.2.3.4",
    reason: "PutObject",
  },
};

const matches = (pattern: unknown, event: unknown = s3Event) => compilePattern(pattern).test(event);

describe("compilePattern (EventBridge's comparison operators)", () => {
  it("matches exact values, nested fields, and arrays in the event by any element", () => {
    expect(matches({ source: ["aws.s3"], "detail-type": ["Object Created"] })).toBe(true);
    expect(matches({ source: ["aws.ec2"] })).toBe(false);
    expect(matches({ detail: { bucket: { name: ["example-bucket", "other"] } } })).toBe(true);
    expect(matches({ resources: ["arn:aws:s3:::example-bucket"] })).toBe(true);
    expect(matches({ detail: { object: { size: [5] } } })).toBe(true);
    expect(matches({ detail: { object: { size: ["5"] } } })).toBe(false);
    expect(matches({ detail: { missing: { deeper: ["x"] } } })).toBe(false);
  });

  it("prefix, suffix, equals-ignore-case, wildcard", () => {
    expect(matches({ detail: { object: { key: [{ prefix: "incoming/" }] } } })).toBe(true);
    expect(matches({ detail: { object: { key: [{ prefix: "INCOMING/" }] } } })).toBe(false);
    expect(matches({ detail: { object: { key: [{ prefix: { "equals-ignore-case": "INCOMING/" } }] } } })).toBe(true);
    expect(matches({ detail: { object: { key: [{ suffix: ".csv" }] } } })).toBe(true);
    expect(matches({ detail: { object: { key: [{ suffix: ".json" }] } } })).toBe(false);
    expect(matches({ "detail-type": [{ "equals-ignore-case": "object created" }] })).toBe(true);
    expect(matches({ detail: { object: { key: [{ wildcard: "incoming/*.csv" }] } } })).toBe(true);
    expect(matches({ detail: { object: { key: [{ wildcard: "incoming/*.json" }] } } })).toBe(false);
    expect(matches({ detail: { object: { key: [{ wildcard: "in(coming)/*" }] } } })).toBe(false);
  });

  it("anything-but with a value, a list, prefix, suffix and ignore case; never a missing field", () => {
    expect(matches({ detail: { reason: [{ "anything-but": "CopyObject" }] } })).toBe(true);
    expect(matches({ detail: { reason: [{ "anything-but": ["PutObject", "CopyObject"] }] } })).toBe(false);
    expect(matches({ detail: { object: { key: [{ "anything-but": { prefix: "tmp/" } }] } } })).toBe(true);
    expect(matches({ detail: { object: { key: [{ "anything-but": { suffix: ".csv" } }] } } })).toBe(false);
    expect(matches({ detail: { reason: [{ "anything-but": { "equals-ignore-case": ["putobject"] } }] } })).toBe(false);
    expect(matches({ detail: { nothing: [{ "anything-but": "x" }] } })).toBe(false);
  });

  it("numeric ranges, exists, cidr", () => {
    expect(matches({ detail: { object: { size: [{ numeric: [">", 0, "<=", 5] }] } } })).toBe(true);
    expect(matches({ detail: { object: { size: [{ numeric: [">", 5] }] } } })).toBe(false);
    expect(matches({ detail: { object: { size: [{ numeric: ["=", 5] }] } } })).toBe(true);
    expect(matches({ detail: { object: { etag: [{ exists: true }] } } })).toBe(true);
    expect(matches({ detail: { object: { "version-id": [{ exists: false }] } } })).toBe(true);
    expect(matches({ detail: { object: { etag: [{ exists: false }] } } })).toBe(false);
    expect(matches({ detail: { "source-ip-address": [{ cidr: "1.2.3.0/24" }] } })).toBe(true);
    expect(matches({ detail: { "source-ip-address": [{ cidr: "10.0.0.0/8" }] } })).toBe(false);
  });

  it("flattens arrays of objects, applies exists to leaves only, and matches exists: false under a missing parent", () => {
    const finding = {
      source: "aws.securityhub",
      detail: {
        findings: [
          { Severity: { Label: "LOW" } },
          { Severity: { Label: "CRITICAL" }, Resources: [{ Type: "AwsS3Bucket" }] },
        ],
      },
    };
    expect(matches({ detail: { findings: { Severity: { Label: ["CRITICAL"] } } } }, finding)).toBe(true);
    expect(matches({ detail: { findings: { Resources: { Type: ["AwsS3Bucket"] } } } }, finding)).toBe(true);
    expect(matches({ detail: { findings: { Severity: { Label: ["MEDIUM"] } } } }, finding)).toBe(false);
    expect(matches({ detail: { object: [{ exists: true }] } })).toBe(false);
    expect(matches({ detail: { object: { key: [{ exists: true }] } } })).toBe(true);
    expect(matches({ detail: { missing: { leaf: [{ exists: false }] } } })).toBe(true);
    expect(matches({ detail: { missing: { leaf: [{ exists: true }] } } })).toBe(false);
  });

  it("$or at any level", () => {
    const pattern = {
      source: ["aws.s3"],
      $or: [{ detail: { object: { size: [{ numeric: [">", 1000] }] } } }, { detail: { reason: ["PutObject"] } }],
    };
    expect(matches(pattern)).toBe(true);
    expect(matches({ ...pattern, $or: [{ detail: { reason: ["CopyObject"] } }, { source: ["x"] }] })).toBe(false);
  });

  it("refuses malformed patterns, naming the place and the fix", () => {
    const bad = (pattern: unknown, message: RegExp) => {
      expect(() => compilePattern(pattern)).toThrow(PatternError);
      expect(() => compilePattern(pattern)).toThrow(message);
    };
    bad("aws.s3", /must be a JSON object/);
    bad({}, /empty object/);
    bad({ source: [] }, /at source is an empty list/);
    // A tern error: recognised by its brand, with its own code.
    expect(() => compilePattern({})).toThrow(
      expect.objectContaining({ name: "PatternError", code: "PATTERN", retryable: false }),
    );
    expect(() => compilePattern({})).toThrow(expect.toSatisfy((e: unknown) => isTernError(e, "PATTERN")));
    bad({ source: "aws.s3" }, /at source must be a list .*write \["aws\.s3"\]/);
    bad({ detail: { size: [{ numeric: [">>", 1] }] } }, /at detail\.size\[0\] numeric operator ">>"/);
    bad({ source: [{ begins: "aws." }] }, /unknown operator "begins"/);
    bad({ source: [{ prefix: 1 }] }, /prefix takes a string/);
    bad({ $or: [{ source: ["a"] }] }, /\$or takes a list of at least two patterns/);
    bad({ ip: [{ cidr: "10.0.0.0/33" }] }, /not an IPv4 or IPv6 block/);
    bad({ key: [{ wildcard: "a**b" }] }, /consecutive/);
  });
});

describe("cidr (IPv4 and IPv6 blocks, as EventBridge)", () => {
  const inBlock = (block: string, address: unknown) => matches({ ip: [{ cidr: block }] }, { ip: address });

  it.each([
    ["10.0.0.0/24", "10.0.0.0"],
    ["10.0.0.0/24", "10.0.0.255"],
    ["10.0.0.7/24", "10.0.0.1"],
    ["10.0.0.1/32", "10.0.0.1"],
    ["0.0.0.0/0", "203.0.113.9"],
    ["10.0.0.0/24", "::ffff:10.0.0.9"],
    ["2001:db8::/32", "2001:db8::1"],
    ["2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["2001:db8::/32", "2001:DB8:0:0:0:0:0:1"],
    ["2001:db8:1::/48", "2001:db8:1:abcd::5"],
    ["::/0", "fe80::1"],
    ["::1/128", "::1"],
  ])("%s holds %s", (block, address) => {
    expect(inBlock(block, address)).toBe(true);
  });

  it.each([
    ["10.0.0.0/24", "10.0.1.0"],
    ["10.0.0.0/24", "2001:db8::1"],
    ["2001:db8::/32", "2001:db9::1"],
    ["2001:db8::/32", "10.0.0.1"],
    ["::/0", "10.0.0.1"],
    ["2001:db8::/32", "2001:db8::1/64"],
    ["2001:db8::/32", "example.com"],
    ["10.0.0.0/8", 167772161],
    ["10.0.0.0/8", null],
  ])("%s does not hold %j", (block, address) => {
    expect(inBlock(block, address)).toBe(false);
  });

  it.each([
    "10.0.0.0/33",
    "10.0.0.0",
    "10.0.0.0/",
    "10.0.0/24",
    "256.0.0.0/8",
    "10.0.0.0/24/8",
    "2001:db8::/129",
    "2001:db8::g/32",
    "example.com/24",
    "",
  ])("refuses %j, naming the value and the fix", (block) => {
    expect(() => compilePattern({ ip: [{ cidr: block }] })).toThrow(PatternError);
    expect(() => compilePattern({ ip: [{ cidr: block }] })).toThrow(
      `event pattern at ip[0] cidr ${JSON.stringify(block)} is not an IPv4 or IPv6 block such as "10.0.0.0/24" or "2001:db8::/32".`,
    );
  });
});
