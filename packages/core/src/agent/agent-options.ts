/** The agents' options and their checks. */
import type { Backend, RunRecord } from "../backend/types.js";
import { describe } from "../describe.js";
import { TernError } from "../errors.js";
import type { Launcher } from "./launcher.js";
import type { ScheduledFlow } from "./schedule.js";

/** Options of {@link Agent}. */
export interface AgentOptions {
  /** How the agent starts the runs it claims, and how many it may have going at once. */
  readonly launcher: Launcher;
  /** The agent takes runs whose labels are a subset of these (a run without labels only if this is empty). @default [] */
  readonly labels?: readonly string[];
  /** @default the backend of `TERN_BACKEND`, else SQLite under `TERN_HOME` */
  readonly backend?: Backend;
  /**
   * Runs claimed and deployed side by side within a poll (each still counts against the
   * launcher's `concurrency`). Launching a Fargate task is mostly waiting on AWS: one at a time
   * stays far under ECS's 20 launches per second. @default 8
   */
  readonly dispatchConcurrency?: number;
  /**
   * Wait between polls in `start()`; a caller that polls on its own (`pollOnce` every minute, as
   * the Lambda does) gives its interval. It also sets how far ahead scheduled runs are created and
   * how late a missed tick may be and still be on time (`scheduleWindows`). @default 2000
   */
  readonly pollIntervalMs?: number;
  /** How long a claim holds before another agent may take the run over. @default 60000 */
  readonly leaseMs?: number;
  /** @default `<hostname>-<random>` */
  readonly agentId?: string;
  /** Progress lines (one per claimed, submitted or failed run). @default none */
  readonly log?: (line: string) => void;
  /**
   * Environment types this agent deploys (a Lambda agent launches Fargate tasks; it cannot host
   * local runners): it claims only runs of these types and leaves the others to other agents. A
   * run that does not record its type (created before tern 0.2) fails with a reason if claimed.
   * @default every type
   */
  readonly environmentTypes?: readonly string[];
  /** Passed to the sweep each poll: how long a run may stay Submitted with no runner. @default 300000 */
  readonly submittedGraceMs?: number;
}

/** Options of {@link LocalAgent}: an agent whose launcher starts runner processes on this machine. */
export interface LocalAgentOptions extends Omit<AgentOptions, "launcher"> {
  /** Most runs this agent has running at once (deploys in flight included). @default 4 */
  readonly concurrency?: number;
  /**
   * The command that starts a runner; `execute <runId>` is appended.
   * @default the JSON array in `TERN_RUNNER_COMMAND`
   */
  readonly runnerCommand?: readonly string[];
}

/** Options of {@link Agent.dispatch}. */
export interface DispatchOptions {
  /**
   * The run as its creator just got it, and the flow version, storage and manifest `scheduleRun`
   * checked it against: the dispatch reads none of them again (an event trigger's fast path).
   * Ignored when they do not describe the same flow version.
   */
  readonly scheduled?: { readonly run: RunRecord; readonly resolved: ScheduledFlow };
  /**
   * Epoch ms by which the launch must be over (a Lambda invocation's end, minus a margin): no
   * claim is made after it, and the environment gets it as `deadlineMs` to stop retrying then and
   * hand the run back instead of outliving its caller.
   */
  readonly deadlineMs?: number;
}

/** What one poll did. */
export interface PollResult {
  /** Runs this poll created for schedules' ticks (due now or soon). */
  readonly scheduled: readonly string[];
  readonly claimed: number;
  readonly submitted: readonly string[];
  readonly failed: ReadonlyArray<{ readonly runId: string; readonly reason: string }>;
}

export function count(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TernError("AGENT_OPTIONS", `LocalAgent: ${name} must be an integer >= 1, got ${describe(value)}.`);
  }
  return value;
}

export function positive(name: string, value: number): number {
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new TernError(
      "AGENT_OPTIONS",
      `LocalAgent: ${name} must be a positive number of milliseconds, got ${describe(value)}.`,
    );
  }
  return value;
}
