/**
 * ECS's request throttling as token buckets on the fake's clock. ECS's documented limits
 * (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html and the
 * Fargate service quotas): RunTask a burst of 100 and 40 per second sustained; Fargate task
 * launches a burst of 100 and 20 per second sustained; RegisterTaskDefinition about 1 per second.
 * A refused call is answered `ThrottlingException` (HTTP 400, "Rate exceeded"), as ECS does.
 */
import type { FakeEcsClock } from "./clock.js";
import { EcsError } from "./errors.js";

/** One bucket: `burst` tokens, refilled at `perSecond`. */
export interface BucketLimits {
  readonly burst: number;
  readonly perSecond: number;
}

/** The buckets the fake keeps; each may be changed or switched off (`false`). */
export interface FakeEcsThrottlingOptions {
  /** @default { burst: 100, perSecond: 40 } */
  readonly runTask?: BucketLimits | false;
  /** Tasks launched on Fargate (each task of a RunTask takes one). @default { burst: 100, perSecond: 20 } */
  readonly fargateLaunches?: BucketLimits | false;
  /** @default { burst: 1, perSecond: 1 } */
  readonly registerTaskDefinition?: BucketLimits | false;
}

export const ECS_THROTTLING_DEFAULTS = {
  runTask: { burst: 100, perSecond: 40 },
  fargateLaunches: { burst: 100, perSecond: 20 },
  registerTaskDefinition: { burst: 1, perSecond: 1 },
} as const satisfies Required<FakeEcsThrottlingOptions>;

export const RATE_EXCEEDED = "Rate exceeded";

/** A token bucket; starts full. */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    readonly limits: BucketLimits,
    private readonly clock: FakeEcsClock,
  ) {
    if (!(limits.burst >= 1) || !(limits.perSecond > 0)) {
      throw new Error(`TokenBucket: burst must be >= 1 and perSecond > 0 (got ${limits.burst}, ${limits.perSecond}).`);
    }
    this.#tokens = limits.burst;
    this.#at = clock.now();
  }

  /** The tokens now (fractional). */
  get tokens(): number {
    this.refill();
    return this.#tokens;
  }

  /** Takes `count` tokens if there are that many; false (taking none) if not. */
  take(count = 1): boolean {
    this.refill();
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.#at);
    this.#at = now;
    this.#tokens = Math.min(this.limits.burst, this.#tokens + (elapsed / 1000) * this.limits.perSecond);
  }
}

/** The fake's buckets; off until {@link Throttling.enable}. */
export class Throttling {
  #buckets: { runTask?: TokenBucket; fargateLaunches?: TokenBucket; registerTaskDefinition?: TokenBucket } = {};
  #on = false;
  /** How many calls each bucket refused. */
  readonly refused = { runTask: 0, fargateLaunches: 0, registerTaskDefinition: 0 };

  constructor(private readonly clock: FakeEcsClock) {}

  get enabled(): boolean {
    return this.#on;
  }

  /** Switches throttling on with full buckets (ECS's limits unless given), or off (`false`). */
  configure(options: FakeEcsThrottlingOptions | boolean): void {
    if (options === false) {
      this.#on = false;
      this.#buckets = {};
      return;
    }
    const given: FakeEcsThrottlingOptions = options === true ? {} : options;
    const make = (limits: BucketLimits | false | undefined, fallback: BucketLimits) =>
      limits === false ? undefined : new TokenBucket(limits ?? fallback, this.clock);
    this.#buckets = {
      runTask: make(given.runTask, ECS_THROTTLING_DEFAULTS.runTask),
      fargateLaunches: make(given.fargateLaunches, ECS_THROTTLING_DEFAULTS.fargateLaunches),
      registerTaskDefinition: make(given.registerTaskDefinition, ECS_THROTTLING_DEFAULTS.registerTaskDefinition),
    };
    this.#on = true;
  }

  /** Throws ECS's ThrottlingException when the bucket is empty. */
  take(bucket: "runTask" | "registerTaskDefinition"): void {
    if (this.#on && this.#buckets[bucket]?.take() === false) {
      this.refused[bucket] += 1;
      throw new EcsError("ThrottlingException", RATE_EXCEEDED);
    }
  }

  /** Takes `count` Fargate launches, all or none; throws ThrottlingException when there are not enough. */
  takeFargateLaunches(count: number): void {
    if (this.#on && this.#buckets.fargateLaunches?.take(count) === false) {
      this.refused.fargateLaunches += 1;
      throw new EcsError("ThrottlingException", RATE_EXCEEDED);
    }
  }
}
