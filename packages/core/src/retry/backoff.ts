/**
 * The one backoff tern waits with between tries of a call that another writer or a throttle
 * turned away, and the loop that uses it for errors worth another try.
 */

/**
 * Exponential backoff with full jitter: a random wait from 0 up to `baseMs * 2^(attempt-1)`,
 * capped at `capMs`. `attempt` is the try that just failed (1 for the first); the randomness
 * keeps callers that collided from colliding again in step.
 */
export function backoffMs(attempt: number, baseMs: number, capMs = 20_000): number {
  return Math.round(Math.random() * Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1)));
}

/** How {@link retryWithBackoff} retries. */
export interface BackoffRetryOptions {
  /** Tries in all, the first included. */
  readonly attempts: number;
  /** The backoff's base and cap, as in {@link backoffMs}. */
  readonly baseMs: number;
  readonly capMs: number;
  /** Whether an error is worth another try; any other error is thrown at once. */
  readonly retryable: (error: unknown) => boolean;
  /** What to throw once the last try failed with a retryable error. */
  readonly exhausted: (error: unknown, attempts: number) => unknown;
}

/**
 * Calls `fn` (with the try's number, from 1) until it resolves, waiting {@link backoffMs} after
 * each try that failed with a retryable error. For conflicts below the run record (a lost
 * transaction, a throttled batch); a run's compare-and-swap goes through `updateRun`, which
 * reads the run again instead of waiting.
 */
export async function retryWithBackoff<T>(
  options: BackoffRetryOptions,
  fn: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!options.retryable(error)) throw error;
      if (attempt >= options.attempts) throw options.exhausted(error, attempt);
    }
    const waitMs = backoffMs(attempt, options.baseMs, options.capMs);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
