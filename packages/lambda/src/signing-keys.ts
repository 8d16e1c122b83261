import type { SecretsProvider } from "@aws-lambda-powertools/parameters/secrets";
import type { LambdaConfig } from "./config.js";
import type { SigningKey } from "./signature.js";

/**
 * Reads the keys from where they are kept (Secrets Manager, or the configuration). `fresh`: read
 * past any cache (a signature matched none of the keys read so far).
 */
export type KeySource = (fresh: boolean) => Promise<readonly SigningKey[]>;

/** How {@link SigningKeys} reads its source again. */
export interface KeyRefresh {
  /**
   * A signature that matches no key reads the keys again, past the cache, at most this often;
   * after a failed read, the keys already read are used this long before the next try.
   * @default 10000
   */
  readonly minIntervalMs?: number;
  /** The clock (tests). @default Date.now */
  readonly now?: () => number;
  /** Told when a read fails (the keys already read stay in use). */
  readonly onError?: (error: unknown) => void;
}

/**
 * How long a warm container uses the signing secret it read before reading it again, in seconds
 * (the Powertools cache's max age): a rotated secret takes effect within this, or at once for a
 * sender already on the new key (see {@link SigningKeys.afterMismatch}).
 */
export const SIGNING_SECRET_MAX_AGE_S = 300;

/**
 * The CloudEvents HMAC keys of a warm container. Each request asks its source, which answers from
 * the Powertools cache until the secret is {@link SIGNING_SECRET_MAX_AGE_S} old. A signature that
 * matches none of the keys (a sender already on a rotated key) reads the secret past the cache,
 * but not more often than every `minIntervalMs`, so a flood of bad signatures costs one Secrets
 * Manager call per interval, not one per request. A failed read keeps the keys it had.
 */
export class SigningKeys {
  readonly #source: KeySource;
  readonly #minIntervalMs: number;
  readonly #now: () => number;
  readonly #onError: ((error: unknown) => void) | undefined;
  #keys: readonly SigningKey[];
  /** When a read last failed: the keys already read are used until minIntervalMs after. */
  #failedAtMs: number | undefined;
  /** When a mismatch last made it read the keys: the rate limit applies to those reads. */
  #mismatchReadAtMs: number | undefined;
  #reading: { readonly fresh: boolean; readonly keys: Promise<readonly SigningKey[]> } | undefined;

  private constructor(source: KeySource, keys: readonly SigningKey[], refresh: KeyRefresh) {
    this.#source = source;
    this.#minIntervalMs = refresh.minIntervalMs ?? 10_000;
    this.#now = refresh.now ?? Date.now;
    this.#onError = refresh.onError;
    this.#keys = keys;
  }

  /** Reads the keys once (a failure fails the cold start, with the source's error). */
  static async load(source: KeySource, refresh: KeyRefresh = {}): Promise<SigningKeys> {
    return new SigningKeys(source, await source(false), refresh);
  }

  /** The keys, from the source's cache (read again once that has expired). */
  async current(): Promise<readonly SigningKey[]> {
    if (this.#failedAtMs !== undefined && this.#now() - this.#failedAtMs < this.#minIntervalMs) return this.#keys;
    return this.#read(false);
  }

  /**
   * After a signature matched no key: reads the keys again past the cache, unless a mismatch
   * already did less than `minIntervalMs` ago. Resolves the keys when they were read again (to
   * check once more), else undefined.
   */
  async afterMismatch(): Promise<readonly SigningKey[] | undefined> {
    // Requests that arrive while the keys are being read past the cache wait for that read.
    if (this.#reading?.fresh === true) return this.#reading.keys;
    const now = this.#now();
    if (this.#mismatchReadAtMs !== undefined && now - this.#mismatchReadAtMs < this.#minIntervalMs) return undefined;
    this.#mismatchReadAtMs = now;
    return this.#read(true);
  }

  #read(fresh: boolean): Promise<readonly SigningKey[]> {
    // One read at a time: a read past the cache serves every caller; a cached one, those that accept it.
    if (this.#reading !== undefined && (this.#reading.fresh || !fresh)) return this.#reading.keys;
    const reading = { fresh, keys: this.#readSource(fresh) };
    this.#reading = reading;
    void reading.keys.finally(() => {
      if (this.#reading === reading) this.#reading = undefined;
    });
    return reading.keys;
  }

  /** Reads the source; never rejects: on failure, the keys already read. */
  async #readSource(fresh: boolean): Promise<readonly SigningKey[]> {
    try {
      this.#keys = await this.#source(fresh);
      this.#failedAtMs = undefined;
    } catch (error) {
      // Secrets Manager unreachable for a moment: the keys already read stay in use.
      this.#failedAtMs = this.#now();
      this.#onError?.(error);
    }
    return this.#keys;
  }
}

/**
 * Where the HMAC keys are read from: the configuration's secret (`TERN_CLOUDEVENTS_SECRET`), or
 * the Secrets Manager secret, through a Powertools `SecretsProvider` whose cache keeps it for
 * {@link SIGNING_SECRET_MAX_AGE_S}. A source for {@link SigningKeys}; empty without HMAC auth.
 */
export function signingKeySource(config: LambdaConfig): KeySource {
  const ce = config.cloudEvents;
  if (ce === undefined || ce.auth !== "hmac") return async () => [];
  const name = ce.secretArn ?? "(TERN_CLOUDEVENTS_SECRET)";
  const { secret, secretArn } = ce;
  if (secret !== undefined || secretArn === undefined) return async () => parseSigningKeys(secret, name);
  // Loaded on first use: the provider imports the Secrets Manager client.
  let provider: Promise<SecretsProvider> | undefined;
  return async (fresh) => {
    provider ??= import("@aws-lambda-powertools/parameters/secrets").then(
      ({ SecretsProvider }) => new SecretsProvider(),
    );
    const value = await (await provider).get(secretArn, { maxAge: SIGNING_SECRET_MAX_AGE_S, forceFetch: fresh });
    return parseSigningKeys(typeof value === "string" ? value : undefined, name);
  };
}

/**
 * The HMAC keys: the secret holds the key itself, or `{"current": "...", "previous": "..."}`
 * while a rotation is under way (requests signed with either are accepted), then
 * `{"current": "..."}` once it is over. The legacy v1 signature format is accepted with a key
 * held as a plain string (the stack's generated secret, set before v2) and with `previous`, not
 * with a `current` key: it lasts until the first rotation is over.
 */
export function parseSigningKeys(text: string | undefined, name: string): SigningKey[] {
  let keys: SigningKey[] = text === undefined ? [] : [{ key: text, acceptsV1: true }];
  if (text?.trim().startsWith("{")) {
    const parsed = JSON.parse(text) as { current?: unknown; previous?: unknown };
    keys = [
      ...(typeof parsed.current === "string" ? [{ key: parsed.current, acceptsV1: false }] : []),
      ...(typeof parsed.previous === "string" ? [{ key: parsed.previous, acceptsV1: true }] : []),
    ];
  }
  if (keys.length === 0 || keys.some((k) => k.key.length < 32)) {
    throw new Error(
      `the CloudEvents signing secret ${name} must hold a key of at least 32 characters, or {"current": ..., "previous": ...} with such keys`,
    );
  }
  return keys;
}
