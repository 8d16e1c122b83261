/**
 * The croner job that computes a cron schedule's ticks: a time that occurs twice in a DST change
 * runs once, a time that does not exist runs at the first instant after the gap (croner's
 * fixed-time rule, applied to every job without a wildcard or step in its time fields). Throws
 * croner's error for an expression it refuses.
 *
 * Flow bundles get a stand-in for this module (`storage/bundle.ts`): a runner defines the flow
 * again when it imports the bundle, but agents compute ticks from the manifest, never a runner,
 * so bundles do not carry croner.
 */
import { Cron } from "croner";

export interface CronJob {
  nextRuns(count: number, after: Date): Date[];
  previousRuns(count: number, before: Date): Date[];
}

export function cronJob(cron: string, timezone: string): CronJob {
  return new Cron(cron, { timezone, fixedTimeRule: "no-wildcard", paused: true });
}
