/**
 * When a task use runs, given how its upstream task runs ended: the skip-on-upstream-skip rule
 * first, then the task's trigger. Pure, so the scheduler only asks and acts on the answer.
 */
import type { TriggerName } from "../flow/task-types.js";
import { isFailed, isSuccessful, type TaskRunState } from "./states.js";

/** An upstream task run as the rules see it. */
export interface UpstreamRun {
  readonly slug: string;
  readonly state: TaskRunState;
}

/** Why a task use does not run: it ends in `state` with `message`. */
export interface Blocked {
  readonly state: "Skipped" | "TriggerFailed";
  readonly message: string;
}

/** Whether `trigger` lets a task run after upstream task runs that ended in `states`. */
export function triggerMet(trigger: TriggerName, states: readonly TaskRunState[]): boolean {
  switch (trigger) {
    case "allSuccessful":
      return states.every(isSuccessful);
    case "allFinished":
      return true;
    case "anySuccessful":
      return states.some(isSuccessful);
    case "anyFailed":
      return states.some(isFailed);
    case "allFailed":
      return states.every(isFailed);
  }
}

/**
 * What stops a task use whose upstream all finished, or `undefined` when it runs. A task use
 * without upstream always runs.
 */
export function upstreamBlocker(
  options: { readonly trigger: TriggerName; readonly skipOnUpstreamSkip: boolean },
  upstream: readonly UpstreamRun[],
): Blocked | undefined {
  if (upstream.length === 0) return undefined;
  if (options.skipOnUpstreamSkip) {
    const skipped = upstream.find((u) => u.state === "Skipped");
    if (skipped !== undefined) return { state: "Skipped", message: `upstream "${skipped.slug}" was skipped` };
  }
  if (
    triggerMet(
      options.trigger,
      upstream.map((u) => u.state),
    )
  )
    return undefined;
  const detail = upstream.map((u) => `"${u.slug}" is ${u.state}`).join(", ");
  return { state: "TriggerFailed", message: `trigger ${options.trigger} not met: upstream ${detail}` };
}
