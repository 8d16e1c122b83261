/**
 * RunTask's `clientToken`: scoped to a cluster and remembered for 24 hours ("The token is valid
 * for 24 hours", ECS_Idempotency). The same token with the same parameters returns the same
 * tasks; with other parameters ECS answers ConflictException naming the tasks in `resourceIds`.
 */
import type { FakeEcsClock } from "./clock.js";

export const CLIENT_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;

export interface RememberedToken {
  readonly fingerprint: string;
  readonly taskArns: readonly string[];
  readonly atMs: number;
}

export class ClientTokens {
  readonly #tokens = new Map<string, RememberedToken>();

  constructor(
    private readonly clock: FakeEcsClock,
    private readonly ttlMs = CLIENT_TOKEN_TTL_MS,
  ) {}

  /** The launch a token made in `cluster` within the last 24 hours. */
  get(cluster: string, token: string): RememberedToken | undefined {
    const key = `${cluster}\n${token}`;
    const found = this.#tokens.get(key);
    if (found !== undefined && this.clock.now() - found.atMs >= this.ttlMs) {
      this.#tokens.delete(key);
      return undefined;
    }
    return found;
  }

  remember(cluster: string, token: string, fingerprint: string, taskArns: readonly string[]): void {
    this.#tokens.set(`${cluster}\n${token}`, { fingerprint, taskArns: [...taskArns], atMs: this.clock.now() });
  }
}
