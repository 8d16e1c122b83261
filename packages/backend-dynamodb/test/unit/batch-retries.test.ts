import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { BackendError } from "@tern/core/plugin";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Item, TableClient } from "../../src/db.js";

const target = { url: "dynamodb://t?region=r", table: "t", region: "r" };

/** A document client that answers each request with the next of `answers` (the last one repeats). */
function fakeDoc(answers: ReadonlyArray<(input: Record<string, unknown>) => unknown>) {
  const inputs: Array<Record<string, unknown>> = [];
  const doc = {
    send: async (command: { input: Record<string, unknown> }) => {
      inputs.push(structuredClone(command.input));
      return (answers[inputs.length - 1] ?? answers.at(-1)!)(command.input);
    },
  } as unknown as DynamoDBDocumentClient;
  return { doc, inputs };
}

const puts = (n: number) => Array.from({ length: n }, (_, i) => ({ put: { pk: `P${i}`, sk: "S" } as Item }));

afterEach(() => vi.restoreAllMocks());

describe("TableClient batches", () => {
  it("sends again what a batch write left unprocessed, until nothing is left", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    const leave = (items: Item[]) => () => ({
      UnprocessedItems: { t: items.map((Item) => ({ PutRequest: { Item } })) },
    });
    const { doc, inputs } = fakeDoc([leave([{ pk: "P1" }, { pk: "P2" }]), leave([{ pk: "P2" }]), () => ({})]);
    await new TableClient(doc, target).batchWrite(puts(3), "save task runs");
    const sent = inputs.map((i) => (i.RequestItems as { t: unknown[] }).t.length);
    expect(sent).toEqual([3, 2, 1]);
  });

  it("reads again the keys a batch get left unprocessed, and returns every item", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    const { doc, inputs } = fakeDoc([
      () => ({ Responses: { t: [{ pk: "A" }] }, UnprocessedKeys: { t: { Keys: [{ pk: "B" }] } } }),
      () => ({ Responses: { t: [{ pk: "B" }] } }),
    ]);
    const items = await new TableClient(doc, target).batchGet([{ pk: "A" }, { pk: "B" }], "list runs");
    expect(items).toEqual([{ pk: "A" }, { pk: "B" }]);
    expect(inputs).toHaveLength(2);
  });

  it("gives up with a retryable BackendError after 8 requests that each left items unprocessed", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    const { doc, inputs } = fakeDoc([(input) => ({ UnprocessedItems: input.RequestItems })]);
    const attempt = new TableClient(doc, target).batchWrite(puts(2), "save task runs");
    await expect(attempt).rejects.toThrow(BackendError);
    await expect(attempt).rejects.toMatchObject({
      retryable: true,
      message:
        "DynamoDB backend dynamodb://t?region=r: cannot save task runs: DynamoDB left part of a batch unprocessed 8 times (throttling). Retry later.",
    });
    expect(inputs).toHaveLength(8);
  });
});
