import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Flow } from "../../src/flow/flow.js";

const LOADING = Symbol.for("tern.loadingBundle");
const global = globalThis as Record<symbol, number | undefined>;
const original = Error.prepareStackTrace;

afterEach(() => {
  Error.prepareStackTrace = original;
  global[LOADING] = undefined;
});

describe("a flow's source file", () => {
  it("is the file that built the flow", () => {
    expect(new Flow("here").sourceFile).toBe(fileURLToPath(import.meta.url));
  });

  // Formatting a stack with source maps on decodes the whole map of a bundle (Node's own
  // Error.prepareStackTrace stands in for it here): a flow built while a bundle loads skips it.
  it("is read from V8's frames, without formatting the stack, while a bundle loads", () => {
    const format = vi.fn((error: Error) => `${error.name}: formatted`);
    Error.prepareStackTrace = format;
    global[LOADING] = 1;
    const flow = new Flow("in-a-bundle");
    expect(format).not.toHaveBeenCalled();
    expect(flow.sourceFile).toBe(fileURLToPath(import.meta.url));
    expect(Error.prepareStackTrace).toBe(format);
  });
});
