import { MemoryStorage } from "@tern/core";
import { describe, expect, it } from "vitest";
import { scaled } from "../fixtures/param-flows.js";

describe("a manifest records parameter schemas", () => {
  it("writes each declared schema beside the parameter's name, required and default", async () => {
    const storage = new MemoryStorage({ name: "parameter-manifest" });
    storage.add(scaled);
    const [built] = await storage.build();
    expect(built?.manifest.flow.parameters).toEqual([
      { name: "factor", required: true, schema: { type: "number" } },
      {
        name: "values",
        required: false,
        default: [1, 2, 3],
        schema: expect.objectContaining({ type: "array", items: { type: "number" } }),
      },
      { name: "label", required: false, default: "x", schema: { type: "string" } },
      { name: "mode", required: false, schema: expect.objectContaining({ type: "string", enum: ["fast", "slow"] }) },
    ]);
  });
});
