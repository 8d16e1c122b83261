import { Flow, task } from "@tern/core";
import { expect, it } from "vitest";

it("runs", async () => {
  const a = task("a", () => 1);
  const f = new Flow("f", {}, () => ({ x: a() }));
  const r = await f.run({ echo: false });
  expect(r.outputs.x).toBe(1);
});
