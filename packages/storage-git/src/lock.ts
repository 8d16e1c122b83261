/**
 * A lock between the processes of one machine around a cache directory: a directory made with
 * `mkdir` (atomic), its modification time refreshed while held, taken over when a holder died
 * (its time is older than {@link LockTimings.staleMs}; one waiter at a time takes over).
 */
import { mkdir, rm, stat, utimes } from "node:fs/promises";
import { dirname } from "node:path";
import { TernError } from "@tern/core";

/** How the lock keeps time (tests give shorter ones). */
export interface LockTimings {
  /** A lock not refreshed for this long was left by a holder that died. */
  readonly staleMs: number;
  /** How often a holder refreshes its lock's time. */
  readonly refreshMs: number;
  /** How long a waiter waits for a live holder before it fails. */
  readonly giveUpMs: number;
}

const TIMINGS: LockTimings = { staleMs: 120_000, refreshMs: 20_000, giveUpMs: 10 * 60_000 };

export async function exclusive<T>(lock: string, work: () => Promise<T>, timings = TIMINGS): Promise<T> {
  const { staleMs, refreshMs, giveUpMs } = timings;
  await mkdir(dirname(lock), { recursive: true });
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const held = await stat(lock).catch(() => undefined);
    if (held !== undefined && Date.now() - held.mtimeMs > staleMs && (await takeOver(lock, staleMs))) continue;
    if (Date.now() - started > giveUpMs) {
      throw new TernError(
        "STORAGE_UNAVAILABLE",
        `Another process has held ${lock} for over ${giveUpMs / 60_000} minutes. If no tern process is running, remove it.`,
        { retryable: true },
      );
    }
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(500, 20 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random())),
    );
  }
  const refresh = setInterval(() => {
    const now = new Date();
    utimes(lock, now, now).catch(() => {});
  }, refreshMs);
  refresh.unref();
  try {
    return await work();
  } finally {
    clearInterval(refresh);
    await rm(lock, { recursive: true, force: true });
  }
}

/**
 * Removes `lock` if it is still stale, one waiter at a time (under `<lock>.takeover`): waiters
 * that all saw it stale would otherwise each remove it, a late one removing the lock that the
 * first had made again in the meantime. True when the lock is gone, to be tried again at once.
 */
async function takeOver(lock: string, staleMs: number): Promise<boolean> {
  const guard = `${lock}.takeover`;
  try {
    await mkdir(guard);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    // Another waiter is taking over; or one died doing so and left its guard.
    const left = await stat(guard).catch(() => undefined);
    if (left !== undefined && Date.now() - left.mtimeMs > staleMs) await rm(guard, { recursive: true, force: true });
    return false;
  }
  try {
    const held = await stat(lock).catch(() => undefined);
    if (held !== undefined && Date.now() - held.mtimeMs <= staleMs) return false;
    await rm(lock, { recursive: true, force: true });
    return true;
  } finally {
    await rm(guard, { recursive: true, force: true });
  }
}
