/**
 * The claimer processes of the backend concurrency tests (a fixture that opens a backend, says
 * "ready", claims runs saying "claimed <n>" as it goes, and prints one JSON line at the end).
 */
import type { ChildProcess } from "node:child_process";

/** Reads a claimer's stdout: "ready" once open, "claimed <n>" as it goes, then one JSON line. */
export function collectClaimer<Result>(child: ChildProcess) {
  let stdout = "";
  let stderr = "";
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.startsWith("ready\n")) onReady();
    const counts = [...stdout.matchAll(/^claimed (\d+)$/gm)].map((m) => Number(m[1]));
    const most = Math.max(0, ...counts);
    for (const waiter of waiters.filter((w) => most >= w.n)) waiter.resolve();
  });
  const done = new Promise<Result>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      const last = stdout.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !last.startsWith("{")) {
        reject(new Error(`claimer exited with ${code}:\n${stdout.slice(-2_000)}\n${stderr}`));
        return;
      }
      resolve(JSON.parse(last) as Result);
    });
  });
  return {
    // A child that dies before "ready" must fail the test, not hang it.
    ready: Promise.race([ready, done.then(() => undefined)]),
    done,
    claimedAtLeast: (n: number) =>
      Promise.race([new Promise<void>((resolve) => waiters.push({ n, resolve })), done.then(() => undefined)]),
  };
}
