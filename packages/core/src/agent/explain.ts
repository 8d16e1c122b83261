import { requireRun } from "../backend/lookup.js";
import { type AgentRecord, type Backend, isTerminalRunState, labelsMatch, type RunRecord } from "../backend/types.js";

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

/**
 * Explains why a run (given by its id or a unique start of it) is, or is not, being picked up:
 * its state, schedule, lease and the agents' labels.
 */
export async function explainRun(
  backend: Backend,
  idOrPrefix: string,
  options: ExplainOptions | number = {},
): Promise<RunExplanation> {
  const { nowMs = Date.now(), watchMs = 0 } = typeof options === "number" ? { nowMs: options } : options;
  // Given by a unique start of its id, the run is named by its whole id in the answer.
  const run = await requireRun(backend, idOrPrefix);
  const runId = run.id;
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
  const { live: agents, all } = await liveAgents(backend, nowMs, watchMs);
  if (agents.length === 0) {
    findings.push(
      `No agent is running: none has polled ${backend.url} in the last ${AGENT_SEEN_WINDOW_MS / 60_000} minutes without stopping since. Start one: tern agent${run.labels.length > 0 ? ` --labels ${run.labels.join(",")}` : ""}.`,
    );
    const last = all.reduce<AgentRecord | undefined>(
      (a, b) => (a === undefined || b.lastSeenAtMs > a.lastSeenAtMs ? b : a),
      undefined,
    );
    if (last !== undefined) findings.push(lastAgentFinding(last, run, nowMs));
    return { runId, state: run.state, willBePickedUp: false, findings };
  }
  const matching = agents.filter((a) => labelsMatch(a.labels, run.labels));
  for (const agent of agents) {
    const mismatch = labelMismatch(agent.labels, run.labels);
    if (mismatch !== undefined) findings.push(`Agent ${agent.id} has ${list(agent.labels)}; ${mismatch}.`);
  }
  if (matching.length === 0) {
    findings.unshift(
      run.labels.length === 0
        ? "No live agent takes the run: it has no labels, which only an agent with no labels takes. Start one (tern agent), or create the run with labels a live agent has (tern run --labels)."
        : `No live agent's labels fit the run's ${list(run.labels)}. Start an agent with at least these labels (tern agent --labels ${run.labels.join(",")}), or create the run with other labels (tern run --labels).`,
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

/** Why an agent with `labels` does not take a run with `runLabels`, or undefined when it does. */
function labelMismatch(labels: readonly string[], runLabels: readonly string[]): string | undefined {
  if (labelsMatch(labels, runLabels)) return undefined;
  if (runLabels.length === 0) return "a run with no labels is only picked up by an agent with no labels";
  const missing = runLabels.filter((l) => !labels.includes(l));
  return `the run needs ${list(runLabels)} (missing: ${missing.join(", ")})`;
}

/** `42 seconds`, `5 minutes`, `3 hours`, `2 days`: how long ago, roughly. */
function roughly(ms: number): string {
  const units: ReadonlyArray<readonly [string, number]> = [
    ["day", 86_400_000],
    ["hour", 3_600_000],
    ["minute", 60_000],
  ];
  for (const [unit, size] of units) {
    const n = Math.floor(ms / size);
    if (n >= 2 || (n === 1 && unit === "minute")) return `${n} ${unit}${n === 1 ? "" : "s"}`;
  }
  const seconds = Math.max(0, Math.round(ms / 1000));
  return `${seconds} second${seconds === 1 ? "" : "s"}`;
}

/**
 * When no agent runs: when the last one polled, whether it stopped (an agent started with
 * `--once` stops after its poll), and what it would have done with this run.
 */
function lastAgentFinding(agent: AgentRecord, run: RunRecord, nowMs: number): string {
  const when = `${roughly(nowMs - agent.lastSeenAtMs)} ago (${new Date(agent.lastSeenAtMs).toISOString()})`;
  const since =
    agent.stoppedAtMs === undefined
      ? "has not been seen since"
      : "stopped after it (an agent started with --once stops after one poll)";
  const mismatch = labelMismatch(agent.labels, run.labels);
  const would =
    mismatch === undefined
      ? `its labels fit: running it again would take this run${run.createdAtMs > agent.lastSeenAtMs ? ", which was created after that poll" : ""}`
      : `it would not take this run: ${mismatch}`;
  return `The last agent to poll, ${agent.id} with ${list(agent.labels)}, polled ${when} and ${since}; ${would}.`;
}

/**
 * The agents that have not stopped and polled lately: by their timestamps, or, for those that
 * look silent, by a poll seen while watching their records for `watchMs`.
 */
async function liveAgents(
  backend: Backend,
  nowMs: number,
  watchMs: number,
): Promise<{ live: AgentRecord[]; all: AgentRecord[] }> {
  const all = await backend.listAgents();
  const running = all.filter((a) => a.stoppedAtMs === undefined);
  const live = running.filter((a) => nowMs - a.lastSeenAtMs <= AGENT_SEEN_WINDOW_MS);
  const silent = running.filter((a) => !live.includes(a));
  if (silent.length === 0 || watchMs <= 0) return { live, all };
  await new Promise((resolve) => setTimeout(resolve, watchMs));
  const later = new Map((await backend.listAgents()).map((a) => [a.id, a]));
  for (const agent of silent) {
    const now = later.get(agent.id);
    if (now !== undefined && now.stoppedAtMs === undefined && now.lastSeenAtMs !== agent.lastSeenAtMs) live.push(now);
  }
  return { live, all };
}
