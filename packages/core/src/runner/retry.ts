/**
 * Retries of a failed task attempt: whether another attempt follows, how long it waits, and the
 * messages a task run carries meanwhile and at the end. Pure; the scheduler keeps the timers.
 */
import type { ResolvedTaskOptions } from "../flow/task-types.js";

/** The task options that govern retries. */
export type RetryOptions = Pick<
  ResolvedTaskOptions,
  "maxRetries" | "retryDelayMs" | "retryBackoff" | "maxRetryDelayMs"
>;

/**
 * The wait before the attempt after `attempt` (1 for the first), or `undefined` when no retry
 * is left. Fixed delays stay at `retryDelayMs`; exponential ones double from it. Both are capped
 * at `maxRetryDelayMs`. No jitter: task retries of one run do not compete with each other.
 */
export function retryDelayMs(options: RetryOptions, attempt: number): number | undefined {
  if (attempt > options.maxRetries) return undefined;
  const factor = options.retryBackoff === "exponential" ? 2 ** (attempt - 1) : 1;
  return Math.min(options.retryDelayMs * factor, options.maxRetryDelayMs);
}

/** The message of a task run waiting to retry after `attempt` failed or timed out. */
export function retryingMessage(attempt: number, timedOut: boolean, error: string): string {
  return `attempt ${attempt} ${timedOut ? "timed out" : "failed"}: ${error}`;
}

/** The message of a task run whose last attempt (`attempts` in all) failed. */
export function failedMessage(attempts: number, error: string): string {
  return attempts === 1 ? error : `${error} (after ${attempts} attempts)`;
}
