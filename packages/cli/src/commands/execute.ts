import type { TernError } from "@tern/core";
import { deployFromBundle, executeRun, requireRun, runnerCommandFromEnv, runnerEnvironment } from "@tern/core/runtime";
import { type Command, printJson, UsageError } from "../cli.js";
import { leaseKeeperEntry } from "../lease-keeper.js";
import { ownCommand } from "../own-command.js";

export const executeCommand: Command = {
  name: "execute",
  help: `
Usage: tern execute [<runId>] [--json]

Without <runId>, the run id comes from TERN_RUN_ID (how ECS tasks start the runner); a unique
prefix of the id is enough. Loads the run and its flow version, verifies and imports the bundle,
calls onStart, runs the flow with the run's parameters, reports task runs, logs and outputs,
calls onExit and records the final state.

  --json   print { runId, state, reason } on stdout when the run ends`,
  options: { json: { type: "boolean" } },
  positionals: [0, 1],
  async run(args, { io, backend }) {
    const given = args.positionals[0] ?? process.env.TERN_RUN_ID?.trim();
    if (given === undefined || given === "") {
      throw new UsageError("execute", "give the run id: tern execute <runId>, or set TERN_RUN_ID.");
    }
    // A prefix becomes the run's full id here: every write after this names the run exactly.
    const runId = (await requireRun(await backend(), given)).id;
    // SIGTERM (a stopped container, the agent's host shutting down) or Ctrl-C: stop the flow and
    // record how the run ended instead of dying without a word.
    const stop = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => stop.abort(signal);
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
    try {
      const result = await executeRun(runId, {
        backend: await backend(),
        log: (line) => io.err(`runner: ${line}\n`),
        signal: stop.signal,
        leaseKeeper: leaseKeeperEntry(),
      });
      io.err(`runner: run ${result.runId} ${result.state}: ${result.reason}\n`);
      if (args.values.json === true) printJson(io, { runId: result.runId, state: result.state, reason: result.reason });
      return result.state === "Success" ? 0 : 1;
    } finally {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
  },
};

export const deployCommand: Command = {
  name: "deploy",
  help: `
Usage: tern deploy <runId>

Used by agents for environments they cannot rebuild themselves: loads the flow's verified
bundle and runs its environment's setup and execute here. Prints one JSON line: the deployment
({ details, watch }), or why there is none ({ failed: { message, code?, retryable? } }, the
reason the agent fails the run with).`,
  options: {},
  positionals: [1, 1],
  async run(args, { io, backend }) {
    // One stdout line reports to the agent (core's DeployReport): the deployment, or why
    // there is none. The agent fails the run with that message, so it is the error's own, never
    // the last line of a stack.
    const report = (fields: Record<string, unknown>) => io.out(`${JSON.stringify(fields)}\n`);
    let deployment: Awaited<ReturnType<typeof deployFromBundle>>;
    try {
      // The runner is this CLI again, unless TERN_RUNNER_COMMAND says otherwise (checked: a JSON array).
      const fromEnv = runnerCommandFromEnv();
      deployment = await deployFromBundle(await backend(), args.positionals[0] as string, {
        runnerCommand: fromEnv.length > 0 ? fromEnv : ownCommand(),
        runnerEnv: runnerEnvironment(),
        onOutput: (line) => io.err(`${line}\n`),
      });
    } catch (error) {
      // Loaded only here: the root entry is more than a deploy that succeeds needs.
      const { isTernError } = await import("@tern/core");
      const { message, code, retryable } = error as Partial<TernError>;
      report({
        failed: {
          message: isTernError(error) ? message : `${(error as Error)?.name ?? "Error"}: ${String(message ?? error)}`,
          ...(isTernError(error) ? { code, retryable } : {}),
        },
      });
      // The agent's log (not the run's reason) keeps the stack of an unexpected error, for debugging.
      const cause = isTernError(error) ? error.cause : error;
      io.err(`tern deploy: ${message}\n${cause instanceof Error && !isTernError(cause) ? `${cause.stack}\n` : ""}`);
      return 1;
    }
    // The agent reads the report at once. With a local child to watch, stay until it exits and
    // exit like it, so the agent can tell a crash from a report.
    const watch = deployment.exited !== undefined;
    report({ details: deployment.details, watch });
    if (deployment.exited !== undefined) {
      const { code, signal } = await deployment.exited;
      return code ?? (signal === null ? 1 : 128);
    }
    return 0;
  },
};
