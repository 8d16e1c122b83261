/**
 * The fake ECS's clock: what its client tokens, throttling buckets and forgetting of stopped tasks
 * count time with. Real time by default; a test injects a {@link ManualClock}; a benchmark a
 * {@link scaledClock} (and gives the same clock to the code under test, so both agree on what a
 * second is).
 */
export interface FakeEcsClock {
  /** Milliseconds since the epoch, on this clock. */
  now(): number;
}

export const realClock: FakeEcsClock = { now: () => Date.now() };

/** A clock that moves only when told to. */
export class ManualClock implements FakeEcsClock {
  #now: number;

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new Error(`ManualClock.advance: give a non-negative number of milliseconds (got ${ms}).`);
    this.#now += ms;
  }
}

/** A clock that runs `factor` times as fast as real time, with `sleep` on the same scale. */
export interface ScaledClock extends FakeEcsClock {
  readonly factor: number;
  /** Waits `ms` milliseconds of this clock (`ms / factor` real ones). */
  sleep(ms: number): Promise<void>;
}

export function scaledClock(factor: number, startMs = Date.now()): ScaledClock {
  if (!(factor > 0) || !Number.isFinite(factor)) {
    throw new Error(`scaledClock: give a positive, finite factor (got ${factor}).`);
  }
  const origin = performance.now();
  return {
    factor,
    now: () => startMs + (performance.now() - origin) * factor,
    sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms) / factor)),
  };
}
