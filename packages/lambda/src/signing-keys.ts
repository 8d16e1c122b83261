import type { SigningKey } from "./signature.js";

/** Reads the keys from where they are kept (Secrets Manager, or the configuration). */
export type KeySource = () => Promise<readonly SigningKey[]>;

/** How often {@link SigningKeys} reads its source. */
export interface KeyRefresh {
  /** Keys older than this are read again before use. @default 300000 (5 minutes) */
  readonly maxAgeMs?: number;
  /** A signature that matches no key reads the keys again, at most this often. @default 10000 */
  readonly minIntervalMs?: number;
  /** The clock (tests). @default Date.now */
  readonly now?: () => number;
  /** Told when a read fails (the keys already read stay in use). */
  readonly onError?: (error: unknown) => void;
}

/**
 * The CloudEvents HMAC keys of a warm container: read at cold start, read again when older than
 * `maxAgeMs`, and at once when a signature matches none of them (a sender already on a rotated
 * key), but not more often than every `minIntervalMs`, so a flood of bad signatures costs one
 * Secrets Manager call per interval, not one per request. A failed read keeps the keys it had.
 */
export class SigningKeys {
  readonly #source: KeySource;
  readonly #maxAgeMs: number;
  readonly #minIntervalMs: number;
  readonly #now: () => number;
  readonly #onError: ((error: unknown) => void) | undefined;
  #keys: readonly SigningKey[];
  #readAtMs: number;
  /** When a mismatch last made it read the keys: the rate limit applies to those reads. */
  #mismatchReadAtMs: number | undefined;
  #reading: Promise<readonly SigningKey[]> | undefined;
  /** How many times the source was read (cold start included). */
  reads = 1;

  private constructor(source: KeySource, keys: readonly SigningKey[], refresh: KeyRefresh) {
    this.#source = source;
    this.#maxAgeMs = refresh.maxAgeMs ?? 300_000;
    this.#minIntervalMs = refresh.minIntervalMs ?? 10_000;
    this.#now = refresh.now ?? Date.now;
    this.#onError = refresh.onError;
    this.#keys = keys;
    this.#readAtMs = this.#now();
  }

  /** Reads the keys once (a failure fails the cold start, with the source's error). */
  static async load(source: KeySource, refresh: KeyRefresh = {}): Promise<SigningKeys> {
    return new SigningKeys(source, await source(), refresh);
  }

  /** The keys, read again first when older than `maxAgeMs`. */
  async current(): Promise<readonly SigningKey[]> {
    if (this.#now() - this.#readAtMs >= this.#maxAgeMs) await this.#read();
    return this.#keys;
  }

  /**
   * After a signature matched no key: reads the keys again, unless a mismatch already did less
   * than `minIntervalMs` ago. Resolves the keys when they were read again (to check once more),
   * else undefined.
   */
  async afterMismatch(): Promise<readonly SigningKey[] | undefined> {
    // Requests that arrive while the keys are being read wait for that read.
    if (this.#reading !== undefined) return this.#reading;
    const now = this.#now();
    if (this.#mismatchReadAtMs !== undefined && now - this.#mismatchReadAtMs < this.#minIntervalMs) return undefined;
    this.#mismatchReadAtMs = now;
    return this.#read();
  }

  #read(): Promise<readonly SigningKey[]> {
    this.#reading ??= (async () => {
      // Stamped first: concurrent requests and a failing source do not read again at once.
      this.#readAtMs = this.#now();
      this.reads += 1;
      try {
        this.#keys = await this.#source();
      } catch (error) {
        // Secrets Manager unreachable for a moment: the keys already read stay in use.
        this.#onError?.(error);
      } finally {
        this.#reading = undefined;
      }
      return this.#keys;
    })();
    return this.#reading;
  }
}
