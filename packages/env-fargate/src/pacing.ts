/**
 * The launch path's clock and the pacing of its calls to ECS: what it waits on between attempts
 * and before each RunTask.
 */

/**
 * The clock the launch path waits on (RunTask pacing, backoff between attempts). Real time by
 * default; a benchmark or test that runs the fake ECS on a scaled clock gives the same clock
 * here, so both sides agree on what a second is (see bench/README.md).
 */
export interface LaunchClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: LaunchClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
};
let launchClock: LaunchClock = realClock;

/** Replaces the launch path's clock (`undefined`: real time again). Resets the RunTask pacer. */
export function setLaunchClock(clock: LaunchClock | undefined): void {
  launchClock = clock ?? realClock;
  runTaskPacer.reset();
}

export const sleep = (ms: number): Promise<void> => launchClock.sleep(ms);

/** Now, on the launch path's clock (epoch ms in real time). */
export const launchNow = (): number => launchClock.now();

/** Exponential backoff with full jitter, capped (20 s unless told): core's one backoff. */
export { backoffMs } from "@tern/core/plugin";

/**
 * Spaces calls of one kind in this process to at most `perSecond`, after an initial burst of
 * `burst` calls: a token bucket (as ECS's own limits are), kept as a schedule of slots. Each
 * caller reserves the next free slot synchronously, so concurrent launches queue instead of
 * bursting past the bucket, and a caller that arrives late for its slot loses nothing.
 *
 * The rate adapts to what the account has left, as the AWS SDK's adaptive retry mode does: a
 * call AWS throttled ({@link throttled}) halves the rate (at most once a second, never below
 * `minPerSecond`) and takes the burst away; each call that goes through ({@link succeeded})
 * adds `1 / rate`, so the rate climbs back by about one call per second every second. Several
 * processes launching into one account's quota settle near their share instead of each being
 * refused for whatever exceeds it.
 */
export class Pacer {
  /** When the bucket is full again, on the launch clock ("theoretical arrival time"). */
  #tat: number | undefined;
  #rate: number;
  #burst: number;
  #lastSlowdownMs = Number.NEGATIVE_INFINITY;

  constructor(
    readonly perSecond: number,
    readonly burst = 1,
    readonly minPerSecond = Math.min(1, perSecond),
  ) {
    if (!(perSecond > 0) || !(minPerSecond > 0) || minPerSecond > perSecond || !(burst >= 1)) {
      throw new RangeError(
        `Pacer: give 0 < minPerSecond <= perSecond and burst >= 1 (got ${minPerSecond}, ${perSecond}, ${burst}).`,
      );
    }
    this.#rate = perSecond;
    this.#burst = burst;
  }

  /** The calls per second allowed now (below `perSecond` after throttling). */
  get rate(): number {
    return this.#rate;
  }

  get intervalMs(): number {
    return 1000 / this.#rate;
  }

  /** Resolves when the caller may make its call. */
  async wait(now = launchClock.now()): Promise<void> {
    const interval = this.intervalMs;
    const tat = Math.max(now, this.#tat ?? now);
    const at = Math.max(now, tat - (this.#burst - 1) * interval);
    this.#tat = tat + interval;
    if (at > now) await sleep(at - now);
  }

  /** AWS refused a call for its rate: slow down. */
  throttled(now = launchClock.now()): void {
    // Calls in flight together are refused together: one slowdown for them all.
    if (now - this.#lastSlowdownMs < 1000) return;
    this.#lastSlowdownMs = now;
    this.#rate = Math.max(this.minPerSecond, this.#rate / 2);
    this.#burst = 1;
  }

  /** A call went through: speed up again toward `perSecond` (and the burst, once there). */
  succeeded(): void {
    if (this.#rate >= this.perSecond) return;
    this.#rate = Math.min(this.perSecond, this.#rate + 1 / this.#rate);
    if (this.#rate === this.perSecond) this.#burst = this.burst;
  }

  /** Forgets the calls made so far and any slowdown (a full bucket at the full rate). */
  reset(): void {
    this.#tat = undefined;
    this.#rate = this.perSecond;
    this.#burst = this.burst;
    this.#lastSlowdownMs = Number.NEGATIVE_INFINITY;
  }
}

/**
 * The pacer every FargateTaskEnvironment in this process shares for RunTask: 20 per second
 * (Fargate's sustained task-launch rate per account and Region; RunTask itself allows 40) after
 * a burst of 50 (half of Fargate's 100, leaving room for other launchers in the account), slower
 * while ECS throttles.
 */
export const runTaskPacer = new Pacer(20, 50);
