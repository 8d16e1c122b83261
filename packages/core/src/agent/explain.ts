import { requireRun } from "../backend/lookup.js";
import { type AgentRecord, type Backend, isTerminalRunState, labelsMatch } from "../backend/types.js";

/** An agent counts as alive when it polled within this window. */
export const AGENT_SEEN_WINDOW_MS = 5 * 60_000;

/** The answer to "why is my run not picked up?". */
export interface RunExplanation {
  readonly runId: string;
  readonly state: string;
  /** Whether some live agent would take the run at its next poll. */
  readonly willBePickedUp: boolean;
  /** One sentence per finding, most important first. */
  readonly findings: readonly string[];
}

const list = (labels: readonly string[]) => (labels.length === 0 ? "no labels" : `labels ${labels.join(", ")}`);

/** Options of {@link explainRun}. */
export interface ExplainOptions {
  readonly nowMs?: number;
  /**
   * How long to watch the agents' records for polls before judging the agents that this clock
   * calls silent: an agent whose record changes meanwhile is live, whatever its clock says (one
   * 10 minutes behind writes old timestamps). @default 0 (judge by the timestamps alone)
   */
  readonly watchMs?: number;
}

/** Explains why a run is (or is not) being picked up: its state, schedule, lease and the agents' labels. */
export async function explainRun(
  backend: Backend,
  runId: string,
  options: ExplainOptions | number = {},
): Promise<RunExplanation> {
  const { nowMs = Date.now(), watchMs = 0 } = typeof options === "number" ? { nowMs: options } : options;
  const run = await requireRun(backend, runId);
  const findings: string[] = [];
  if (run.state !== "Scheduled") {
    const done = isTerminalRunState(run.state);
    findings.push(
      `The run is ${run.state}${run.reason ? ` (${run.reason})` : ""}: ${done ? "it is over" : "an agent already picked it up"}; only Scheduled runs are picked up.`,
    );
    return { runId, state: run.state, willBePickedUp: false, findings };
  }
  let blocked = false;
  if (run.scheduledAtMs > nowMs) {
    blocked = true;
    findings.push(
      `The run is scheduled for ${new Date(run.scheduledAtMs).toISOString()}; agents take it from then on.`,
    );
  }
  if (run.lease !== undefined && run.lease.expiresAtMs > nowMs) {
    blocked = true;
    findings.push(
      `Agent ${run.lease.owner} holds its lease until ${new Date(run.lease.expiresAtMs).toISOString()} (attempt ${run.attempts}). If that agent died, another agent takes the run over when the lease expires.`,
    );
  }
  const agents = await liveAgents(backend, nowMs, watchMs);
  if (agents.length === 0) {
    findings.push(
      `No agent is running: none has polled ${backend.url} in the last ${AGENT_SEEN_WINDOW_MS / 60_000} minutes without stopping since. Start one: tern agent${run.labels.length > 0 ? ` --labels ${run.labels.join(",")}` : ""}.`,
    );
    return { runId, state: run.state, willBePickedUp: false, findings };
  }
  const matching = agents.filter((a) => labelsMatch(a.labels, run.labels));
  for (const agent of agents) {
    if (labelsMatch(agent.labels, run.labels)) continue;
    const missing = run.labels.filter((l) => !agent.labels.includes(l));
    findings.push(
      run.labels.length === 0
        ? `Agent ${agent.id} has ${list(agent.labels)}; a run with no labels is only picked up by an agent with no labels.`
        : `Agent ${agent.id} has ${list(agent.labels)} but the run needs ${list(run.labels)} (missing: ${missing.join(", ")}).`,
    );
  }
  if (matching.length === 0) {
    findings.unshift(
      `No live agent's labels fit the run's ${list(run.labels)}. Start an agent with ${run.labels.length === 0 ? "no labels (tern agent)" : `at least these labels (tern agent --labels ${run.labels.join(",")})`}, or create the run with other labels (tern run --labels).`,
    );
    return { runId, state: run.state, willBePickedUp: false, findings };
  }
  if (!blocked) {
    findings.unshift(
      `Agent${matching.length > 1 ? "s" : ""} ${matching.map((a) => a.id).join(", ")} can take the run at the next poll.`,
    );
  }
  return { runId, state: run.state, willBePickedUp: !blocked, findings };
}

/**
 * The agents that have not stopped and polled lately: by their timestamps, or, for those that
 * look silent, by a poll seen while watching their records for `watchMs`.
 */
async function liveAgents(backend: Backend, nowMs: number, watchMs: number): Promise<AgentRecord[]> {
  const running = (await backend.listAgents()).filter((a) => a.stoppedAtMs === undefined);
  const live = running.filter((a) => nowMs - a.lastSeenAtMs <= AGENT_SEEN_WINDOW_MS);
  const silent = running.filter((a) => !live.includes(a));
  if (silent.length === 0 || watchMs <= 0) return live;
  await new Promise((resolve) => setTimeout(resolve, watchMs));
  const later = new Map((await backend.listAgents()).map((a) => [a.id, a]));
  for (const agent of silent) {
    const now = later.get(agent.id);
    if (now !== undefined && now.stoppedAtMs === undefined && now.lastSeenAtMs !== agent.lastSeenAtMs) live.push(now);
  }
  return live;
}
