import { isTernError } from "@tern/core";
import type { RunRecord } from "@tern/core/plugin";
import { type ScheduledFlow, scheduleRun } from "@tern/core/runtime";
import { ruleParameters, type TriggerRule } from "./rules.js";
import { logger, type Runtime } from "./runtime.js";

/**
 * Whether a failure may pass, so the event should be delivered again: a tern error marked
 * `retryable` where it was made (the state table throttled, S3 answering 503, a lost
 * compare-and-swap), or anything unforeseen. A flow that is not registered, a parameter that does
 * not fit, a denied permission are not transient, and retrying would not help.
 */
export function isPassing(error: unknown): boolean {
  return !isTernError(error) || error.retryable;
}

/** What happened for one matching rule. */
export interface TriggeredRun {
  readonly rule: string;
  readonly project: string;
  readonly flow: string;
  readonly runId?: string;
  /** false when the event was seen before: the run it started is returned again. */
  readonly created?: boolean;
  /**
   * submitted, skipped (already dispatched, or another agent has it), failed, handedOff (created;
   * its launch handed to the launch queue), or error (no run).
   */
  readonly dispatch: "submitted" | "skipped" | "failed" | "handedOff" | "error";
  readonly reason?: string;
}

/** How {@link startRuns} launches the runs it made. */
export interface StartOptions {
  /**
   * `inline` (default): each run is dispatched here, at once, with the flow version and manifest
   * already read (nothing read twice), by `deadlineMs`. `handOff`: the runs are only created; the
   * caller hands their launch on (the CloudEvents handler, to the launch queue).
   */
  readonly launch?: "inline" | "handOff";
  /** Epoch ms by which an inline launch must be over (the invocation's end minus a margin). */
  readonly deadlineMs?: number;
}

/**
 * Starts a run per matching rule, keyed by the event's id (a redelivered event finds its run
 * instead of making another), and dispatches each at once instead of waiting for the agent's
 * next tick. One rule's failure (a flow not registered, a bad parameter) does not stop the others.
 */
export async function startRuns(
  rt: Runtime,
  rules: readonly TriggerRule[],
  event: unknown,
  eventKey: string,
  options: StartOptions = {},
): Promise<TriggeredRun[]> {
  const unexpected: unknown[] = [];
  const runs = await Promise.all(
    rules.map(async (rule): Promise<TriggeredRun> => {
      // Per rule: two rules on one flow each start their run from the same event.
      const idempotencyKey = `${eventKey}#${rule.name}`;
      const base = { rule: rule.name, project: rule.project, flow: rule.flow };
      let runId: string;
      let created: boolean;
      let scheduled: { run: RunRecord; resolved: ScheduledFlow };
      try {
        const result = await scheduleRun(rt.backend, {
          project: rule.project,
          flow: rule.flow,
          parameters: ruleParameters(rule, event),
          idempotencyKey,
        });
        runId = result.run.id;
        created = result.created;
        scheduled = { run: result.run, resolved: result.resolved };
      } catch (error) {
        if (isPassing(error)) unexpected.push(error);
        const reason = isTernError(error) ? error.message : `unexpected: ${(error as Error).message}`;
        logger.error("trigger rule could not start a run", {
          rule: rule.name,
          flow: rule.flow,
          idempotencyKey,
          reason,
        });
        return { ...base, dispatch: "error", reason };
      }
      if (options.launch === "handOff") {
        logger.info("started run; its launch is handed on", { rule: rule.name, flow: rule.flow, runId, created });
        return { ...base, runId, created, dispatch: "handedOff" };
      }
      // A run just created is dispatched from what scheduleRun read; a duplicate's record may be
      // stale, so it is read again.
      const dispatched = await rt.agent.dispatch(runId, {
        ...(created ? { scheduled } : {}),
        ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
      });
      logger.info("triggered run", {
        rule: rule.name,
        flow: rule.flow,
        runId,
        created,
        idempotencyKey,
        dispatch: dispatched.status,
        reason: dispatched.reason,
      });
      return {
        ...base,
        runId,
        created,
        dispatch: dispatched.status,
        ...(dispatched.reason === undefined ? {} : { reason: dispatched.reason }),
      };
    }),
  );
  // A failure that is not about the event (the table throttled, the network): throw, so the
  // event is delivered again; the runs the other rules started are found by their keys.
  if (unexpected.length > 0) throw unexpected[0];
  return runs;
}
