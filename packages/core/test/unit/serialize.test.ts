import { Flow, task } from "@tern/core";
import { serializeRun, toSerializedValue } from "@tern/core/plugin";
import { describe, expect, it } from "vitest";

describe("toSerializedValue", () => {
  it("keeps JSON values as they are", () => {
    const value = { a: [1, "two", true, null], b: { c: 1.5 } };
    expect(toSerializedValue(value)).toEqual({ kind: "json", value });
  });

  it("uses toJSON where a value defines it (Date)", () => {
    expect(toSerializedValue(new Date(0))).toEqual({ kind: "json", value: "1970-01-01T00:00:00.000Z" });
  });

  it("treats undefined properties as absent and undefined itself as its own kind", () => {
    expect(toSerializedValue({ a: 1, b: undefined })).toEqual({ kind: "json", value: { a: 1 } });
    expect(toSerializedValue(undefined)).toEqual({ kind: "undefined" });
  });

  it.each([
    [{ n: 10n }, "bigint", "$.n", /BigInt 10n at \$.n has no JSON form/],
    [[1, Number.NaN], "number", "$[1]", /NaN at \$\[1\] is not a JSON number/],
    [{ f: () => 1 }, "function", "$.f", /a function at \$.f/],
    [new Map([[1, 2]]), "Map", "$", /a Map at \$ has no JSON form/],
    [{ s: new Set() }, "Set", "$.s", /a Set at \$.s/],
    [[undefined], "undefined", "$[0]", /undefined at \$\[0\]/],
    [{ sym: Symbol("x") }, "symbol", "$.sym", /a symbol/],
    [{ inf: Number.POSITIVE_INFINITY }, "number", "$.inf", /Infinity/],
  ])("reports %o as unserializable", (value, type, path, reason) => {
    const out = toSerializedValue(value);
    expect(out).toMatchObject({ kind: "unserializable", type, path });
    expect(out.kind === "unserializable" && out.reason).toMatch(reason);
  });

  it("reports a cycle instead of overflowing", () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    expect(toSerializedValue(a)).toMatchObject({ kind: "unserializable", type: "circular", path: "$.self" });
  });

  it("allows the same object twice when it is not a cycle", () => {
    const shared = { x: 1 };
    expect(toSerializedValue([shared, shared])).toEqual({ kind: "json", value: [{ x: 1 }, { x: 1 }] });
  });
});

describe("serializeRun", () => {
  it("writes states and results, reporting results JSON cannot hold", async () => {
    const ok = task("ok", () => ({ rows: 3 }));
    const big = task("big", () => 2n ** 70n);
    const bad = task("bad", () => {
      throw new Error("nope");
    });
    const flow = new Flow("ser", {}, () => ({ ok: ok(), big: big() }));
    flow.bind(bad);
    const run = await flow.run({ echo: false, runId: "r1" });
    const json = JSON.parse(JSON.stringify(serializeRun(run)));
    expect(json).toMatchObject({
      format: "tern.run/1",
      runId: "r1",
      flow: "ser",
      state: "Failed",
      outputs: {
        ok: { kind: "json", value: { rows: 3 } },
        big: { kind: "unserializable", type: "bigint", path: "$" },
      },
    });
    expect(
      json.taskRuns.map((t: { slug: string; state: string; result?: unknown }) => [t.slug, t.state, t.result]),
    ).toEqual([
      ["ok", "Success", { kind: "json", value: { rows: 3 } }],
      [
        "big",
        "Success",
        { kind: "unserializable", type: "bigint", path: "$", reason: expect.stringContaining("BigInt") },
      ],
      ["bad", "Failed", undefined],
    ]);
    expect(json.taskRuns[2].error.message).toBe("nope");
  });
});
