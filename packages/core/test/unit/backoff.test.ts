import { afterEach, describe, expect, it, vi } from "vitest";
import { backoffMs, retryWithBackoff } from "../../src/retry/backoff.js";

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe("backoffMs", () => {
  it.each([
    // attempt, base, cap, random, expected
    [1, 100, 2_000, 0.5, 50],
    [2, 100, 2_000, 0.5, 100],
    [3, 100, 2_000, 1, 400],
    [6, 100, 2_000, 1, 2_000],
    [30, 100, 2_000, 0.25, 500],
    [0, 100, 2_000, 1, 100],
    [1, 100, 2_000, 0, 0],
    [3, 1_000, undefined, 1, 4_000],
    [9, 1_000, undefined, 1, 20_000],
  ])("attempt %i, base %i, cap %s, random %s: %i ms", (attempt, base, cap, random, expected) => {
    vi.spyOn(Math, "random").mockReturnValue(random);
    expect(backoffMs(attempt, base, cap)).toBe(expected);
  });
});

describe("retryWithBackoff", () => {
  class Busy extends Error {}
  const options = {
    attempts: 3,
    baseMs: 100,
    capMs: 1_000,
    retryable: (error: unknown) => error instanceof Busy,
    exhausted: (error: unknown, attempts: number) => new Error(`gave up after ${attempts}`, { cause: error }),
  };

  it("returns the first result that resolves, waiting a backoff after each retryable failure", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(1);
    const tries: Array<[number, number]> = [];
    const start = Date.now();
    const result = retryWithBackoff(options, async (attempt) => {
      tries.push([attempt, Date.now() - start]);
      if (attempt < 3) throw new Busy();
      return "done";
    });
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe("done");
    expect(tries).toEqual([
      [1, 0],
      [2, 100],
      [3, 300],
    ]);
  });

  it("throws what exhausted makes once every try failed with a retryable error", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    let calls = 0;
    const attempt = retryWithBackoff(options, async () => {
      calls += 1;
      throw new Busy("busy");
    });
    await expect(attempt).rejects.toThrow("gave up after 3");
    await expect(attempt).rejects.toMatchObject({ cause: expect.any(Busy) });
    expect(calls).toBe(3);
  });

  it("throws any other error at once", async () => {
    let calls = 0;
    const attempt = retryWithBackoff(options, async () => {
      calls += 1;
      throw new TypeError("bad input");
    });
    await expect(attempt).rejects.toThrow(TypeError);
    expect(calls).toBe(1);
  });
});
