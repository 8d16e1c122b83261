import { LocalAgent } from "@tern/core/runtime";
import { type Command, intOption, splitLabels } from "../cli.js";
import { ownCommand } from "../own-command.js";

export const agentCommand: Command = {
  name: "agent",
  help: `
Usage: tern agent [--labels a,b] [--once] [--concurrency N] [--poll-interval-ms MS]

Claims Scheduled runs whose labels are all among the agent's (a run with no labels only by an
agent with no labels), rebuilds each flow's environment and deploys the run.

Options:
  --labels a,b            the agent's labels (default: none)
  --once                  claim what is ready, deploy it, wait for the local runs, then exit
  --concurrency N         most runs at once (default 4)
  --poll-interval-ms MS   wait between polls (default 2000)`,
  options: {
    labels: { type: "string" },
    once: { type: "boolean" },
    concurrency: { type: "string" },
    "poll-interval-ms": { type: "string" },
  },
  positionals: [0, 0],
  async run(args, { io, backend }) {
    const labels = splitLabels(args.values.labels as string | undefined) ?? [];
    const agent = new LocalAgent({
      labels,
      backend: await backend(),
      concurrency: intOption("agent", "concurrency", args.values.concurrency, 4),
      pollIntervalMs: intOption("agent", "poll-interval-ms", args.values["poll-interval-ms"], 2_000),
      // Runners start as this CLI, unless TERN_RUNNER_COMMAND (read by LocalAgent) says otherwise.
      ...(process.env.TERN_RUNNER_COMMAND === undefined ? { runnerCommand: ownCommand() } : {}),
      log: (line) => io.err(`agent: ${line}\n`),
    });
    io.err(`agent ${agent.agentId} with ${labels.length === 0 ? "no labels" : `labels ${labels.join(", ")}`}\n`);
    if (args.values.once === true) {
      const result = await agent.pollOnce();
      await agent.stop();
      io.err(
        `agent: claimed ${result.claimed}, submitted ${result.submitted.length}, failed to deploy ${result.failed.length}\n`,
      );
      return result.failed.length === 0 ? 0 : 1;
    }
    const stop = () => void agent.stop();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    await agent.start();
    await agent.stop();
    return 0;
  },
};
