import { describe, expect, it } from "vitest";
import { failedMessage, type RetryOptions, retryDelayMs, retryingMessage } from "../../src/runner/retry.js";

const options = (extra: Partial<RetryOptions> = {}): RetryOptions => ({
  maxRetries: 3,
  retryDelayMs: 100,
  retryBackoff: "fixed",
  maxRetryDelayMs: 250,
  ...extra,
});

describe("retryDelayMs", () => {
  it.each([
    ["fixed, first failure", options(), 1, 100],
    ["fixed, last retry", options(), 3, 100],
    ["fixed, no retry left", options(), 4, undefined],
    ["no retries at all", options({ maxRetries: 0 }), 1, undefined],
    ["exponential, first failure", options({ retryBackoff: "exponential" }), 1, 100],
    ["exponential, second failure doubles", options({ retryBackoff: "exponential" }), 2, 200],
    ["exponential, capped", options({ retryBackoff: "exponential" }), 3, 250],
    ["fixed, capped", options({ retryDelayMs: 1000 }), 1, 250],
    ["zero delay", options({ retryDelayMs: 0, retryBackoff: "exponential" }), 2, 0],
  ] as const)("%s", (_, opts, attempt, expected) => {
    expect(retryDelayMs(opts, attempt)).toBe(expected);
  });
});

describe("retry messages", () => {
  it.each([
    [retryingMessage(1, false, "boom"), "attempt 1 failed: boom"],
    [retryingMessage(2, true, "too slow"), "attempt 2 timed out: too slow"],
    [failedMessage(1, "boom"), "boom"],
    [failedMessage(3, "boom"), "boom (after 3 attempts)"],
  ])("%s", (message, expected) => {
    expect(message).toBe(expected);
  });
});
