/**
 * A lock between the processes of one machine around a cache directory: a directory made with
 * `mkdir` (atomic), its modification time refreshed while held, taken over when a holder died
 * (its time is older than {@link STALE_MS}).
 */
import { mkdir, rm, stat, utimes } from "node:fs/promises";
import { dirname } from "node:path";
import { TernError } from "@tern/core";

const STALE_MS = 120_000;
const REFRESH_MS = 20_000;
const GIVE_UP_MS = 10 * 60_000;

export async function exclusive<T>(lock: string, work: () => Promise<T>): Promise<T> {
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
    if (held !== undefined && Date.now() - held.mtimeMs > STALE_MS) {
      await rm(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() - started > GIVE_UP_MS) {
      throw new TernError(
        "STORAGE_UNAVAILABLE",
        `Another process has held ${lock} for over ${GIVE_UP_MS / 60_000} minutes. If no tern process is running, remove it.`,
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
  }, REFRESH_MS);
  refresh.unref();
  try {
    return await work();
  } finally {
    clearInterval(refresh);
    await rm(lock, { recursive: true, force: true });
  }
}
