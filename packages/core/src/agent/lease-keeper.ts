/**
 * Keeps a runner's lease on its run, off the event loop that runs the flow's tasks: a task that
 * computes synchronously for minutes blocks that loop, so renewing from it would let the lease
 * expire under a live runner. The keeper runs in a worker thread with its own backend
 * connection; it renews the lease, tells the runner when its run is being cancelled or is no
 * longer its own, and stops the process when the flow does not stop (docs/architecture.md,
 * "Leases, fencing and clocks").
 *
 * The worker's module is the caller's: the tern CLI passes its `lease-keeper` entry, which
 * registers the backend schemes it knows and calls {@link runLeaseKeeper}. Without one, the
 * keeper runs on the caller's event loop (a library user's process), as before.
 */
import { Worker } from "node:worker_threads";
import { openBackend } from "../backend/open.js";
import { type Backend, isTerminalRunState, type RunRecord } from "../backend/types.js";
import { isTernError } from "../errors.js";
import { endOpenTaskRuns } from "./end-run.js";
import { heartbeatEveryMs } from "./lease.js";
import { updateRun } from "./update-run.js";

/** What the runner gives its keeper (`workerData`). */
export interface LeaseKeeperData {
  readonly kind: "tern-lease-keeper";
  readonly backendUrl: string;
  readonly runId: string;
  /** The runner's lease owner (`runner:<host>:<pid>`). */
  readonly owner: string;
  readonly leaseMs: number;
  /** After a cancel, how long the flow may take to stop before the keeper ends the run and the process. */
  readonly stopGraceMs: number;
}

/** What the keeper tells the runner. */
export type LeaseKeeperEvent =
  /** The keeper's thread is up, with its backend open: renewals will be on time from `begin()`. */
  | { readonly type: "ready" }
  /** The run is being cancelled: abort the flow. */
  | { readonly type: "cancel" }
  /** The run is not this runner's any more (ended, or another runner holds it): write nothing more. */
  | { readonly type: "lost"; readonly reason: string };

export function isLeaseKeeperData(value: unknown): value is LeaseKeeperData {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "tern-lease-keeper";
}

/** What one look at the run decided. */
export type KeeperVerdict =
  | { readonly kind: "renew"; readonly run: RunRecord }
  | { readonly kind: "cancel"; readonly run: RunRecord }
  | { readonly kind: "lost"; readonly reason: string };

/** Whether the runner `owner` still holds `run`, and what it must do (pure). */
export function keeperVerdict(run: RunRecord | undefined, owner: string): KeeperVerdict {
  if (run === undefined) return { kind: "lost", reason: "the run is gone from the backend" };
  if (isTerminalRunState(run.state)) {
    return { kind: "lost", reason: `the run already ended ${run.state}${run.reason ? `: ${run.reason}` : ""}` };
  }
  // A cancel from a tern that cleared the lease: still this runner's run to end.
  if (run.state === "Cancelling" && run.lease === undefined) return { kind: "cancel", run };
  if (run.lease?.owner !== owner) {
    return {
      kind: "lost",
      reason:
        run.lease === undefined
          ? `the run's lease was cleared (it is ${run.state})`
          : `the run is held by ${run.lease.owner} now`,
    };
  }
  return run.state === "Cancelling" ? { kind: "cancel", run } : { kind: "renew", run };
}

/** A started keeper, as the runner sees it. */
export interface LeaseKeeper {
  /**
   * Resolves once the keeper can renew on time (its worker loaded, its backend open), or once it
   * fell back to the runner's own thread. The runner takes its lease after this, so the first
   * renewal is never late, however slowly the worker started.
   */
  readonly ready: Promise<void>;
  /**
   * Starts renewing, once the runner holds the lease. The keeper is started before (a worker
   * takes a moment to load), so its first renewal is on time even with short leases.
   */
  begin(): void;
  /** Stops renewing (before the runner writes its final state, which clears the lease). */
  stop(): Promise<void>;
}

/**
 * Starts keeping the lease `owner` holds on `runId`: in a worker thread running `entry` (a
 * module that calls {@link runLeaseKeeper}), or on this event loop without one.
 */
export function startLeaseKeeper(
  data: Omit<LeaseKeeperData, "kind">,
  options: {
    readonly entry?: URL;
    readonly backend: Backend;
    readonly onEvent: (event: LeaseKeeperEvent) => void;
    readonly log?: (line: string) => void;
  },
): LeaseKeeper {
  const workerData: LeaseKeeperData = { kind: "tern-lease-keeper", ...data };
  if (options.entry === undefined) return keepInThread(workerData, options.backend, options.onEvent);
  const worker = spawnKeeper(options.entry, workerData);
  let begun = false;
  let stopping = false;
  let fallback: LeaseKeeper | undefined;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  let up = false;
  // A worker that is not up within a lease length is renewed for from this thread instead. The
  // check waits a turn of the event loop: after a task blocked the loop, the timer comes due
  // before the worker's queued "ready" message is read. Until the worker is up, it and this timer
  // keep the process alive; after, neither does.
  const slow = setTimeout(
    () => setImmediate(() => !up && takeOver("it did not start in time")),
    Math.max(5_000, data.leaseMs),
  );
  const settled = () => {
    up = true;
    clearTimeout(slow);
    // A worker being terminated stays referenced until it exits: `stop()` awaits that.
    if (!stopping) worker.unref();
    markReady();
  };
  // A worker that cannot run (a module that does not load, a backend it cannot open) must not
  // leave the lease to expire under a live runner: keep it from this thread instead.
  const takeOver = (why: string) => {
    if (stopping || fallback !== undefined) return;
    options.log?.(`the lease keeper's thread ended (${why}); renewing from the runner's own thread`);
    fallback = keepInThread(workerData, options.backend, options.onEvent);
    if (begun) fallback.begin();
    settled();
    void worker.terminate();
  };
  worker.on("message", (event: LeaseKeeperEvent) => {
    if (event.type === "ready") settled();
    else options.onEvent(event);
  });
  worker.on("error", (error) => takeOver(error.message));
  worker.on("exit", (code) => takeOver(`exit code ${code}`));
  let stopped: Promise<void> | undefined;
  return {
    ready,
    begin: () => {
      begun = true;
      if (fallback !== undefined) fallback.begin();
      else worker.postMessage({ type: "begin" });
    },
    stop: () => {
      stopping = true;
      clearTimeout(slow);
      stopped ??= Promise.all([worker.terminate(), fallback?.stop()]).then(() => undefined);
      return stopped;
    },
  };
}

/**
 * The flags a keeper's worker runs with: this process's, minus those about the main script's
 * input (the Fargate bootstrap runs `node --input-type=module -e ...`, and a worker that
 * inherits `--input-type` refuses to load a file).
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] as string;
    if (arg.startsWith("--input-type")) {
      if (arg === "--input-type") i += 1;
      continue;
    }
    if (["-e", "--eval", "-p", "--print"].includes(arg)) {
      i += 1;
      continue;
    }
    if (/^--(eval|print)=/.test(arg)) continue;
    out.push(arg);
  }
  return out;
}

/** A worker on `entry`; a TypeScript entry (tern run from its sources) loads through tsx. */
function spawnKeeper(entry: URL, workerData: LeaseKeeperData): Worker {
  const execArgv = workerExecArgv();
  if (!entry.pathname.endsWith(".ts")) return new Worker(entry, { workerData, execArgv });
  // tsx's --import hook does not reach worker threads (privatenumber/tsx#354): register it here.
  const tsx = import.meta.resolve("tsx/esm/api");
  const source = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(source, { eval: true, workerData, execArgv });
}

/** The keeper's loop, in whichever thread: renew, watch for cancel and loss, stop what will not stop. */
async function keepLoop(
  data: LeaseKeeperData,
  backend: Backend,
  emit: (event: LeaseKeeperEvent) => void,
  isStopped: () => boolean,
  sleep: (ms: number) => Promise<void>,
  killProcess: (() => void) | undefined,
  begun: Promise<void>,
): Promise<void> {
  await begun;
  const every = heartbeatEveryMs(data.leaseMs);
  let cancelSeenAt: number | undefined;
  // The runner took its lease just before starting the keeper.
  let wait = every;
  for (;;) {
    await sleep(wait);
    if (isStopped()) return;
    wait = every;
    let verdict: KeeperVerdict;
    try {
      verdict = keeperVerdict(await backend.getRun(data.runId), data.owner);
    } catch {
      // The backend is unreachable for now: the lease has three more renewals' worth of time.
      wait = Math.min(every, 1_000);
      continue;
    }
    if (isStopped()) return;
    if (verdict.kind === "lost") {
      emit({ type: "lost", reason: verdict.reason });
      // Nothing this runner does counts any more: a flow that keeps computing would only
      // finish a task for nobody. In a worker, end the process at once.
      killProcess?.();
      return;
    }
    if (verdict.kind === "cancel") {
      if (cancelSeenAt === undefined) {
        cancelSeenAt = performance.now();
        emit({ type: "cancel" });
      } else if (killProcess !== undefined && performance.now() - cancelSeenAt > data.stopGraceMs) {
        // The flow did not stop (a task blocking its event loop): end the run, then the process.
        await cancelStuck(backend, verdict.run, data);
        killProcess();
        return;
      }
    }
    try {
      await backend.transitionRun({
        runId: data.runId,
        expectedRevision: verdict.run.revision,
        to: verdict.run.state,
        lease: { owner: data.owner, expiresAtMs: Date.now() + data.leaseMs },
      });
    } catch (error) {
      // Written meanwhile (a cancel, the agent's deployment details): look again soon. Any other
      // failure (throttling, a reset, a busy database) is retried too: the lease has three more
      // renewals' worth of time, and only a verdict ends the keeper.
      wait = Math.min(every, isTernError(error, "RUN_CONFLICT") ? 250 : 1_000);
      continue;
    }
    if (verdict.kind === "cancel") wait = Math.min(every, 1_000);
  }
}

async function cancelStuck(backend: Backend, run: RunRecord, data: LeaseKeeperData): Promise<void> {
  const reason = `cancelled; the flow did not stop within ${Math.round(data.stopGraceMs / 1000)} s of the cancel (a task blocking the runner's event loop?), so the runner process was killed`;
  try {
    await updateRun<void>(
      backend,
      data.runId,
      (latest) =>
        latest === undefined || isTerminalRunState(latest.state)
          ? { done: undefined }
          : {
              write: { to: "Cancelled", reason, lease: null },
              result: () => endOpenTaskRuns(backend, data.runId, "Cancelled", reason).then(() => undefined),
            },
      { known: run, attempts: 5, exhausted: () => undefined },
    );
  } catch {
    // The backend failed us: the process ends either way, and the agent or the sweep ends the run.
  }
}

/** The worker's side: run by the keeper entry module with its `workerData` and `parentPort`. */
export async function runLeaseKeeper(
  data: LeaseKeeperData,
  port: {
    postMessage(event: LeaseKeeperEvent): void;
    once(event: "message", listener: (message: unknown) => void): unknown;
  },
): Promise<void> {
  const begun = new Promise<void>((resolve) => port.once("message", () => resolve()));
  const backend = await openBackend(data.backendUrl);
  port.postMessage({ type: "ready" });
  try {
    await keepLoop(
      data,
      backend,
      (event) => port.postMessage(event),
      () => false,
      (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      () => process.kill(process.pid, "SIGKILL"),
      begun,
    );
  } finally {
    await backend.close();
  }
}

/** The keeper on the caller's event loop: renews while the loop is free, cannot stop a blocked flow. */
function keepInThread(
  data: LeaseKeeperData,
  backend: Backend,
  onEvent: (event: LeaseKeeperEvent) => void,
): LeaseKeeper {
  let stopped = false;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve();
      const timer = setTimeout(resolve, ms);
      timer.unref();
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  let begin: () => void = () => {};
  const begun = new Promise<void>((resolve) => {
    begin = resolve;
  });
  const loop = keepLoop(data, backend, onEvent, () => stopped, sleep, undefined, begun).catch(() => {});
  return {
    ready: Promise.resolve(),
    begin: () => begin(),
    stop: async () => {
      begin();
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
