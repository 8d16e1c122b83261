/** Timing helpers shared by the storage benchmarks: a timing from a collected heap, medians, rounding. */

/** Collects garbage, when the benchmark runs with --expose-gc (`pnpm bench` does). */
export function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** A timed call, with the peak memory seen while it ran. */
export interface Measured<T> {
  readonly ms: number;
  readonly peakRss: number;
  readonly peakArrayBuffers: number;
  readonly value: T;
}

/**
 * Samples memory while `fn` runs, from a collected heap: garbage left by the other side (or by
 * the previous server, whose Git cases leave hundreds of MB) would otherwise be collected on
 * this one's time.
 */
export async function measured<T>(fn: () => Promise<T>): Promise<Measured<T>> {
  collect();
  let peakRss = 0;
  let peakArrayBuffers = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 5);
  sample();
  const t0 = performance.now();
  try {
    const value = await fn();
    return { ms: performance.now() - t0, peakRss, peakArrayBuffers, value };
  } finally {
    clearInterval(timer);
    sample();
  }
}

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Two decimals. */
export function round(x: number): number {
  return Math.round(x * 100) / 100;
}
