import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe } from "vitest";

/** Options every contract suite takes. */
export interface ContractOptions {
  /**
   * Per-test timeout in milliseconds, for implementations behind a network or an emulator.
   * @default vitest's configured `testTimeout`
   */
  readonly timeoutMs?: number;
}

/** What a contract's test works with: the subject opened for it and a scope no other test uses. */
export interface Opened<T> {
  readonly subject: T;
  /** `contract-1a2b3c4d`: a project, a key prefix. */
  readonly scope: string;
}

/** How a contract suite opens its subject before each test and closes it after. */
export interface ContractHooks<T> {
  open(): Promise<T> | T;
  close(subject: T, scope: string): Promise<void>;
}

/**
 * Declares a contract suite as a vitest `describe` block: each test gets a freshly opened subject
 * and a random scope, both closed after it. `tests` declares the tests, which read the current
 * test's subject and scope through `opened`.
 */
export function contractSuite<T>(
  title: string,
  options: ContractOptions,
  hooks: ContractHooks<T>,
  tests: (opened: () => Opened<T>) => void,
): void {
  describe(title, { timeout: options.timeoutMs }, () => {
    let current: Opened<T> | undefined;

    beforeEach(async () => {
      current = { subject: await hooks.open(), scope: `contract-${randomUUID().slice(0, 8)}` };
    });

    afterEach(async () => {
      const closing = current;
      current = undefined;
      if (closing !== undefined) await hooks.close(closing.subject, closing.scope);
    });

    tests(() => {
      if (current === undefined) throw new Error(`${title}: nothing is open (beforeEach failed)`);
      return current;
    });
  });
}
