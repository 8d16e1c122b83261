/**
 * The worker thread that keeps a runner's lease (see `startLeaseKeeper` in @tern/core): the
 * backend schemes the CLI knows are registered here too, since a worker starts with none.
 * The runner bundle, one file, runs this from its own entry (runner.ts) instead.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { isLeaseKeeperData, runLeaseKeeper } from "@tern/core/runtime";

/** Runs the keeper when this thread is one; resolves whether it was. */
export async function keepLeaseIfWorker(): Promise<boolean> {
  if (isMainThread || parentPort === null || !isLeaseKeeperData(workerData)) return false;
  await import("./loaders.js");
  await runLeaseKeeper(workerData, parentPort);
  return true;
}

/**
 * Set at build time by the CLI compiled from the sources (source-runner.ts): the keeper's own
 * bundle, relative to this module's file, which loads only what keeping a lease needs.
 */
declare const __TERN_LEASE_KEEPER_BUNDLE__: string | undefined;

/** This module's own URL (or its own bundle's), for `executeRun({ leaseKeeper })`, unless an entry replaced it. */
let entry =
  typeof __TERN_LEASE_KEEPER_BUNDLE__ === "string"
    ? new URL(__TERN_LEASE_KEEPER_BUNDLE__, import.meta.url)
    : new URL(import.meta.url);

export function leaseKeeperEntry(): URL {
  return entry;
}

/** The runner bundle is one file: its workers start from it, not from this module. */
export function setLeaseKeeperEntry(url: URL): void {
  entry = url;
}

await keepLeaseIfWorker();
