import { requireRun } from "../backend/lookup.js";
import { type Backend, isTerminalRunState, labelsMatch } from "../backend/types.js";

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

/** Explains why a run is (or is not) being picked up: its state, schedule, lease and the agents' labels. */
export async function explainRun(backend: Backend, runId: string, nowMs = Date.now()): Promise<RunExplanation> {
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
  const agents = (await backend.listAgents()).filter(
    (a) => a.stoppedAtMs === undefined && nowMs - a.lastSeenAtMs <= AGENT_SEEN_WINDOW_MS,
  );
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
