import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keys, part, sortableTime } from "../../src/keys.js";
import { createTableCliCommand, ternTableDefinition } from "../../src/table.js";
import { LOG_RECORD_LIMIT_BYTES, prepareLogRecord } from "../../src/task-runs.js";

describe("keys", () => {
  it("sorts times as strings in the order of the numbers, negative ones included", () => {
    const time = fc.integer({ min: -Number.MAX_SAFE_INTEGER + 1, max: Number.MAX_SAFE_INTEGER });
    fc.assert(
      fc.property(time, time, (a, b) => {
        const [x, y] = [sortableTime(a), sortableTime(b)];
        expect(x.length).toBe(y.length);
        expect(Math.sign(x < y ? -1 : x > y ? 1 : 0)).toBe(Math.sign(a - b));
      }),
    );
  });

  it("never gives two different project/flow pairs the same key", () => {
    expect(keys.flowVersionsPk("a#b", "c")).not.toBe(keys.flowVersionsPk("a", "b#c"));
    expect(part("50%#x")).toBe("50%25%23x");
  });

  it("hashes idempotency keys, so any event id fits in a partition key", () => {
    const key = keys.idempotency("p", "f", "é".repeat(5_000));
    expect(key.PK).toMatch(/^IDEM#[0-9a-f]{64}$/);
    expect(keys.idempotency("p", "f", "k").PK).not.toBe(keys.idempotency("p", "g", "k").PK);
  });
});

describe("table definition", () => {
  it("is on-demand with five string-keyed indexes, the same the create-table command shows", () => {
    const definition = ternTableDefinition("tern");
    expect(definition.BillingMode).toBe("PAY_PER_REQUEST");
    expect(definition.GlobalSecondaryIndexes?.map((i) => i.IndexName)).toEqual([
      "GSI1",
      "GSI2",
      "GSI3",
      "GSI4",
      "GSI5",
    ]);
    expect(definition.AttributeDefinitions?.every((a) => a.AttributeType === "S")).toBe(true);
    const command = createTableCliCommand("tern", "eu-west-1");
    expect(command).toMatch(
      /^aws dynamodb create-table --region eu-west-1 --table-name tern --billing-mode PAY_PER_REQUEST/,
    );
    expect(command).toContain(JSON.stringify(definition.GlobalSecondaryIndexes));
    expect(command).toContain("AttributeName=expiresAt");
  });
});

describe("prepareLogRecord", () => {
  const record = { taskRunId: "r/t", timeMs: 1, level: "info", source: "logger" } as const;

  it("keeps a normal record as it is", () => {
    const prepared = prepareLogRecord({ ...record, message: "hello", fields: { n: 1 } }, "dynamodb://t");
    expect(prepared).toEqual({
      taskRunId: "r/t",
      body: JSON.stringify({ timeMs: 1, level: "info", source: "logger", message: "hello", fields: { n: 1 } }),
    });
  });

  it("cuts a huge message under the limit and says how much was cut", () => {
    const message = `${"é".repeat(600_000)}end`;
    const { body } = prepareLogRecord({ ...record, message }, "dynamodb://t");
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(LOG_RECORD_LIMIT_BYTES);
    const parsed = JSON.parse(body) as { message: string };
    expect(parsed.message.startsWith("éééé")).toBe(true);
    expect(parsed.message).toMatch(
      /… \[truncated: \d+ more characters; a log record holds at most 64 KB in DynamoDB\]$/,
    );
  });

  it("drops huge fields, saying how large they were", () => {
    const { body } = prepareLogRecord(
      { ...record, message: "m", fields: { rows: "x".repeat(200_000) } },
      "dynamodb://t",
    );
    expect(JSON.parse(body)).toMatchObject({
      message: "m",
      fields: { truncated: expect.stringMatching(/^200011 bytes of fields dropped/) },
    });
  });

  it("rejects a record that is not JSON, naming its task run", () => {
    const fields: Record<string, unknown> = {};
    fields.self = fields;
    expect(() => prepareLogRecord({ ...record, message: "m", fields }, "dynamodb://t")).toThrow(
      /task run r\/t cannot be stored as JSON/,
    );
  });
});
