import { Flow, FlowDefinitionError, parameter, type Ref, task } from "@tern/core";
import { ParameterValueError, readParameterText, schemaMismatch } from "@tern/core/plugin";
import { scheduleRun } from "@tern/core/runtime";
import { describe, expect, expectTypeOf, it } from "vitest";
import * as z from "zod";
import * as zm from "zod/mini";
import { scaled } from "../fixtures/param-flows.js";
import { useScaledWorld } from "../fixtures/param-world.js";

/** The declaration `parameter(name, options)` makes, inside a flow that uses it. */
function declared(options: Record<string, unknown>) {
  const flow = new Flow("f", {}, () => ({ p: parameter("p", options as { required: false }) }));
  return flow.parameters[0];
}

describe("parameter(name, { schema })", () => {
  it("records a JSON Schema as given and a zod schema as its JSON Schema", () => {
    expect(declared({ schema: { type: "number" } })).toMatchObject({ schema: { type: "number" }, required: true });
    expect(declared({ schema: z.array(z.int()), default: [1] })).toMatchObject({
      schema: { type: "array", items: { type: "integer" } },
      required: false,
      default: [1],
    });
    // zod's .optional() makes the parameter optional; its .default(...) gives the default.
    expect(declared({ schema: z.string().optional() })).toMatchObject({ required: false, hasDefault: false });
    expect(declared({ schema: z.number().default(4) })).toMatchObject({ required: false, default: 4 });
  });

  it.each([
    [{ type: "number", minimun: 1 }, /parameter\("p"\): schema uses "minimun", which tern does not check/],
    [{ type: "object", properties: { a: { if: {} } } }, /schema at \.properties\.a uses "if"/],
    [{ type: "decimal" }, /"type" must be one of string, number, integer, boolean, null, array, object/],
    [
      { type: "number", minimum: () => 1 },
      /schema cannot be recorded as JSON: a function at \$\.minimum has no JSON form/,
    ],
    ["number", /parameter\("p"\): schema must be a JSON Schema object or a zod schema, got "number"/],
    [z.date(), /parameter\("p"\): schema cannot be written as JSON Schema: Date cannot be represented/],
    [zm.number(), /parameter\("p"\): schema gives no JSON Schema \(a zod\/mini schema does not\)/],
  ])("refuses a schema it cannot record: %j", (schema, message) => {
    expect(() => declared({ schema })).toThrow(FlowDefinitionError);
    expect(() => declared({ schema })).toThrow(message);
  });

  it("refuses a default its schema does not accept, naming the parameter and the value", () => {
    expect(() => declared({ schema: { type: "number" }, default: "ten" })).toThrow(
      /parameter\("p"\): the default "ten" does not fit the schema: expected number/,
    );
  });

  it("gives the reference the schema's type", () => {
    const flow = new Flow("typed", {}, () => {
      expectTypeOf(parameter("a", { schema: { type: "number" } })).toEqualTypeOf<Ref<number>>();
      expectTypeOf(parameter("b", { schema: z.number() })).toEqualTypeOf<Ref<number>>();
      expectTypeOf(parameter("c", { schema: { type: ["string", "null"] }, required: false })).toEqualTypeOf<
        Ref<string | null | undefined>
      >();
      expectTypeOf(parameter("d", { schema: { enum: ["fast", "slow"] }, default: "fast" })).toEqualTypeOf<
        Ref<"fast" | "slow">
      >();
      const e = parameter("e", {
        schema: {
          type: "object",
          properties: { n: { type: "integer" }, tags: { type: "array", items: { type: "string" } } },
          required: ["n"],
        },
      });
      expectTypeOf(e).toEqualTypeOf<Ref<{ n: number; tags?: string[] }>>();
      expectTypeOf(parameter("f", { schema: z.object({ on: z.boolean() }) })).toEqualTypeOf<Ref<{ on: boolean }>>();
      // The default must fit the schema, for tsc and when declared.
      // @ts-expect-error: "x" is not a number
      expect(() => parameter("g", { schema: { type: "number" }, default: "x" })).toThrow(/the default "x"/);
      return {};
    });
    expect(flow.parameters.map((p) => p.name)).toEqual(["a", "b", "c", "d", "e", "f"]);
  });
});

describe("checking values", () => {
  const object = {
    type: "object",
    properties: { n: { type: "integer" } },
    required: ["n"],
    additionalProperties: false,
  };
  it.each([
    [{ type: "string" }, 5, "string"],
    [{ type: "number" }, "abc", "number"],
    [{ type: "integer" }, 1.5, "integer"],
    [{ type: "boolean" }, "true", "boolean"],
    [{ enum: ["a", "b"] }, "c", 'one of "a", "b"'],
    [{ type: ["string", "null"] }, 3, "string or null"],
    [{ type: "array", items: { type: "number" } }, [1, "2"], "number"],
    [object, {}, "integer"],
    [object, { n: 1, m: 2 }, "nothing (no value is allowed here)"],
    [{ type: "number", minimum: 1 }, 0, "a number >= 1"],
    [{ type: "string", maxLength: 2 }, "abc", "at most 2 characters"],
    [{ anyOf: [{ type: "string" }, { type: "number" }] }, true, "string or number"],
  ])("%j refuses %j, expecting %s", (schema, value, expected) => {
    expect(schemaMismatch(schema, value)?.expected).toBe(expected);
  });

  it.each([
    [{ type: "string" }, "x"],
    [{ type: "integer" }, 3],
    [{ type: ["string", "null"] }, null],
    [{ enum: [1, [2]] }, [2]],
    [{ type: "object", additionalProperties: { type: "number" } }, { a: 1 }],
    [{ type: "array", items: { type: "object", properties: { a: { const: 1 } } } }, [{ a: 1 }, {}]],
  ])("%j accepts %j", (schema, value) => {
    expect(schemaMismatch(schema, value)).toBeUndefined();
  });

  it("flow.run() refuses a value its schema does not accept before running anything, naming parameter, value and type", async () => {
    const ran: unknown[] = [];
    const record = task("record", (factor: number) => ran.push(factor));
    const flow = new Flow("typed-run", {}, () => ({ n: record(parameter("factor", { schema: { type: "number" } })) }));
    const refused = flow.run({ parameters: { factor: "abc" } });
    await expect(refused).rejects.toThrow(ParameterValueError);
    await expect(refused).rejects.toThrow(
      /Flow "typed-run": parameter "factor" is "abc", expected number\. .*Nothing was run\./,
    );
    await expect(refused).rejects.toMatchObject({ code: "PARAMETERS", problems: [{ name: "factor", got: "abc" }] });
    expect(ran).toEqual([]);
    expect((await flow.run({ parameters: { factor: 5 } })).state).toBe("Success");
    expect(ran).toEqual([5]);
  });

  it("names where in a structured value the mismatch is", async () => {
    await expect(scaled.run({ parameters: { factor: 2, values: [1, "2"] } })).rejects.toThrow(
      /parameter "values" at \[1\] is "2", expected number/,
    );
  });
});

describe("reading --param text by the declared type", () => {
  it.each([
    [{ type: "number" }, "5", 5],
    [{ type: "string" }, "5", "5"],
    [{ type: "number" }, "abc", "abc"],
    [{ type: "boolean" }, "true", true],
    [{ type: ["string", "null"] }, "null", "null"],
    [{ type: "array", items: { type: "integer" } }, "[1,2]", [1, 2]],
    [{ enum: ["1", "2"] }, "1", "1"],
    [undefined, "5", 5],
    [undefined, "tern", "tern"],
    [undefined, "12345678901234567890", "12345678901234567890"],
    [undefined, "1e400", "1e400"],
  ])("%j reads %j as %j", (schema, text, value) => {
    expect(readParameterText(schema, text)).toEqual(value);
  });
});

describe("scheduleRun checks the values against the manifest's schemas", () => {
  const backend = useScaledWorld("p");

  it("refuses values that do not fit, writing nothing", async () => {
    const refused = scheduleRun(backend(), {
      project: "p",
      flow: "scaled",
      parameters: { factor: "abc", mode: "medium" },
    });
    await expect(refused).rejects.toThrow(
      /parameter "factor" is "abc", expected number; parameter "mode" is "medium", expected one of "fast", "slow"/,
    );
    expect(await backend().listRuns({ project: "p" })).toEqual([]);
  });

  it("reads text parameters by their declared types", async () => {
    const { run } = await scheduleRun(backend(), {
      project: "p",
      flow: "scaled",
      textParameters: { factor: "5", label: "5", values: "[4]" },
    });
    expect(run.parameters).toEqual({ factor: 5, label: "5", values: [4] });
    await expect(
      scheduleRun(backend(), { project: "p", flow: "scaled", textParameters: { factor: "abc" } }),
    ).rejects.toThrow(/parameter "factor" is "abc", expected number/);
  });
});
