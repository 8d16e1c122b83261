import { LocalAgent } from "@tern/core/runtime";
import { type Command, type Io, intOption, splitLabels } from "../cli.js";
import { STDOUT_TO_STDERR } from "../one-stream.js";
import { ownCommand } from "../own-command.js";

/** What `tern agent --json` prints, one JSON object a line. */
type AgentEvent =
  | { readonly event: "started"; readonly labels: readonly string[] }
  | { readonly event: "log"; readonly message: string }
  | { readonly event: "stopping"; readonly signal: string; readonly waitingFor: readonly string[] }
  | {
      readonly event: "polled";
      /** Runs created for schedules' ticks (due now or soon). */
      readonly scheduled: readonly string[];
      readonly claimed: number;
      readonly submitted: readonly string[];
      readonly failed: ReadonlyArray<{ readonly runId: string; readonly reason: string }>;
    }
  | { readonly event: "stopped" };

/** The agent's words for an event, as `tern agent` prints them without `--json`. */
function describeEvent(agentId: string, e: AgentEvent): string {
  switch (e.event) {
    case "started":
      return `agent ${agentId} with ${e.labels.length === 0 ? "no labels" : `labels ${e.labels.join(", ")}`}`;
    case "log":
      return `agent: ${e.message}`;
    case "stopping":
      return e.waitingFor.length === 0
        ? `agent: ${e.signal}: stopping; claiming no more runs (none of its runs is running)`
        : `agent: ${e.signal}: stopping; claiming no more runs and waiting for the ${e.waitingFor.length === 1 ? "run" : `${e.waitingFor.length} runs`} it started to end (${e.waitingFor.map((id) => id.slice(0, 8)).join(", ")}). Press Ctrl-C again to exit without waiting; the runs go on.`;
    case "polled":
      return `agent: created ${e.scheduled.length} scheduled, claimed ${e.claimed}, submitted ${e.submitted.length}, failed to deploy ${e.failed.length}`;
    case "stopped":
      return "agent: stopped";
  }
}

/** Prints events as JSON lines on stdout (`--json`), else in words on stderr. */
function eventPrinter(io: Io, json: boolean): (agentId: string, event: AgentEvent) => void {
  return (agentId, event) => {
    if (json) io.out(`${JSON.stringify({ ...event, agentId, timeMs: Date.now() })}\n`);
    else io.err(`${describeEvent(agentId, event)}\n`);
  };
}

export const agentCommand: Command = {
  name: "agent",
  help: `
Usage: tern agent [--labels a,b] [--once] [--concurrency N] [--poll-interval-ms MS] [--json]

Claims Scheduled runs whose labels are all among the agent's (a run with no labels only by an
agent with no labels), rebuilds each flow's environment and deploys the run. Each line a run
prints is shown as "run <first 8 characters of its id> | <line>", stdout and stderr in the
order the runner wrote them. Ctrl-C stops claiming and waits for the runs it started (it says
which); Ctrl-C again exits without waiting.

Options:
  --labels a,b            the agent's labels (default: none)
  --once                  claim what is ready, deploy it, wait for the local runs, then exit
  --concurrency N         most runs at once (default 4)
  --poll-interval-ms MS   wait between polls (default 2000); it also sets how far ahead the runs
                          of schedules are created (five polls, 10 s to 3 min) and how late a
                          missed tick is still on time (two polls, 5 s to 2 min): with --once
                          from cron, give cron's interval
  --json                  print JSON lines on stdout, each { event, agentId, timeMs, ... }:
                          started (labels), log (message), polled (--once: scheduled, claimed,
                          submitted, failed), stopping (signal, waitingFor), stopped`,
  options: {
    labels: { type: "string" },
    once: { type: "boolean" },
    concurrency: { type: "string" },
    "poll-interval-ms": { type: "string" },
    json: { type: "boolean" },
  },
  positionals: [0, 0],
  async run(args, { io, backend }) {
    const labels = splitLabels(args.values.labels as string | undefined) ?? [];
    const print = eventPrinter(io, args.values.json === true);
    // Runners this agent starts inherit it: they write stdout to stderr, one pipe, so their lines
    // reach the agent in the order they were written (two pipes are read in any order).
    process.env[STDOUT_TO_STDERR] ??= "1";
    const agent: LocalAgent = new LocalAgent({
      labels,
      backend: await backend(),
      concurrency: intOption("agent", "concurrency", args.values.concurrency, 4),
      pollIntervalMs: intOption("agent", "poll-interval-ms", args.values["poll-interval-ms"], 2_000),
      // Runners start as this CLI, unless TERN_RUNNER_COMMAND (read by LocalAgent) says otherwise.
      ...(process.env.TERN_RUNNER_COMMAND === undefined ? { runnerCommand: ownCommand() } : {}),
      log: (message) => print(agent.agentId, { event: "log", message }),
    });
    print(agent.agentId, { event: "started", labels });
    // The first signal stops the agent, which then waits for its runs; a second one is Node's
    // default (exit at once), since the handler is gone.
    const stop = (signal: NodeJS.Signals) => {
      print(agent.agentId, { event: "stopping", signal, waitingFor: agent.activeRunIds });
      void agent.stop();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    try {
      let code = 0;
      if (args.values.once === true) {
        const result = await agent.pollOnce();
        print(agent.agentId, { event: "polled", ...result });
        code = result.failed.length === 0 ? 0 : 1;
      } else {
        await agent.start();
      }
      await agent.stop();
      print(agent.agentId, { event: "stopped" });
      return code;
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    }
  },
};
