import { isMainThread } from "node:worker_threads";
// Types only: `tern --help` and a mistyped command load none of tern's core (cli.js imports it).
import type { Command, Io, UsageError } from "./cli.js";
import { isEntryModule } from "./entry.js";

/**
 * The commands, each loaded only when it runs: `tern --help` and a mistyped command load none of
 * them, and a command loads the SDKs and tools it needs (esbuild, cloud SDKs) by itself.
 */
interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  /** Used by agents, not listed in the usage. */
  readonly hidden?: boolean;
  load(): Promise<Command>;
}

const commands: readonly CommandEntry[] = [
  {
    name: "register",
    summary: "bundle the flows exported by files into storage and record their versions",
    load: async () => (await import("./commands/register.js")).registerCommand,
  },
  {
    name: "run",
    summary: "create a run of a registered flow",
    load: async () => (await import("./commands/run.js")).runCommand,
  },
  {
    name: "agent",
    summary: "run a local agent: claim runs whose labels it satisfies and deploy them",
    load: async () => (await import("./commands/agent.js")).agentCommand,
  },
  {
    name: "flows",
    summary: "list registered flows with their newest version",
    load: async () => (await import("./commands/inspect.js")).flowsCommand,
  },
  {
    name: "runs",
    summary: "list runs, or show one: tern runs show <id>",
    load: async () => (await import("./commands/inspect.js")).runsCommand,
  },
  {
    name: "schedules",
    summary: "list scheduled flows with their next ticks; pause or resume a flow's schedules",
    load: async () => (await import("./commands/schedules.js")).schedulesCommand,
  },
  {
    name: "logs",
    summary: "print what a run's tasks logged (console output included)",
    load: async () => (await import("./commands/logs.js")).logsCommand,
  },
  {
    name: "cancel",
    summary: "cancel a run (Scheduled: at once; Submitted or Running: through its runner)",
    load: async () => (await import("./commands/inspect.js")).cancelCommand,
  },
  {
    name: "why",
    summary: "explain why a run is or is not being picked up (labels, agents, lease)",
    load: async () => (await import("./commands/inspect.js")).whyCommand,
  },
  {
    name: "doctor",
    summary: "check tern's state: TERN_HOME, the backend, SQLite's integrity check",
    load: async () => (await import("./commands/doctor.js")).doctorCommand,
  },
  {
    name: "execute",
    summary: "run a flow run in this process (what agents start; exit 0 only on Success)",
    load: async () => (await import("./commands/execute.js")).executeCommand,
  },
  {
    name: "deploy",
    summary: "run a custom environment's setup and execute from the flow's bundle (used by agents)",
    hidden: true,
    load: async () => (await import("./commands/execute.js")).deployCommand,
  },
];

function usage(): string {
  const rows = commands.filter((c) => !c.hidden).map((c) => `  ${c.name.padEnd(10)}${c.summary}`);
  return `Usage: tern <command> [options]

Commands:
${rows.join("\n")}

Run "tern <command> --help" for a command's options, "tern --version" for the version.
Environment: TERN_HOME (embedded home, default ./.tern), TERN_BACKEND (sqlite://<path>),
TERN_PROJECT (default project).
`;
}

const stdio: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/**
 * Runs `tern` with `argv` (without node and script). Resolves to the exit code: 0 on success,
 * 1 when something failed, 2 for a usage error.
 */
export async function main(argv: readonly string[], io: Io = stdio): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.err : io.out)(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-v" || name === "version") {
    const { TERN_VERSION } = await import("@tern/core/runtime");
    io.out(`tern ${TERN_VERSION} (node ${process.version})\n`);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (entry === undefined) {
    io.err(`tern: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    // Storage, environment and backend loaders are registered before a command can open them.
    await import("./loaders.js");
    const { runCommand } = await import("./cli.js");
    return await runCommand(await entry.load(), rest, io);
  } catch (error) {
    return await reportFailure(entry.name, error, io);
  }
}

/**
 * What a core error means for the command the user typed, where the error speaks of the API
 * (`register(..., { build: false })`) and the user of a flag (`--no-build`): printed after it.
 */
const CLI_HINTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  register: {
    DIRTY_CHECKOUT:
      "tern register --require-clean registered nothing (requireClean above). Leave out --require-clean to register from a dirty checkout: the version then records dirty: true.",
    NOT_BUILT:
      "tern register --no-build registers builds made beforehand (build: false above). Leave out --no-build to build and register in one step, or run the step that builds (storage.build(), with the same storage) first.",
  },
};

/**
 * Prints why a command failed and resolves to its exit code: 2 for a usage error, 1 otherwise.
 * A tern error's message is meant for the user; anything else is unexpected and shows its stack.
 */
async function reportFailure(command: string, error: unknown, io: Io): Promise<number> {
  // Loaded by the command already, unless loading it is what failed.
  const core = await import("@tern/core").catch(() => undefined);
  if (core?.isTernError(error, "USAGE")) {
    const { command: name } = error as UsageError;
    io.err(`tern ${name}: ${error.message}\nRun "tern ${name} --help" for usage.\n`);
    return 2;
  }
  if (core?.isTernError(error)) {
    const hint = CLI_HINTS[command]?.[error.code];
    io.err(`tern ${command}: ${error.message}\n${hint === undefined ? "" : `${hint}\n`}`);
    if (process.env.TERN_DEBUG) io.err(`${error.stack}\n`);
    return 1;
  }
  io.err(`tern ${command}: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  return 1;
}

/** Commands that run user code, which may leave timers or sockets open: they exit when done. */
const EXIT_WHEN_DONE = new Set(["execute", "deploy"]);

/**
 * Runs `tern` as a process: {@link main} with `argv`, then sets the exit code (or exits, once
 * output is flushed, after commands that run user code). The `tern` bin and the runner bundle
 * start here.
 */
export async function runCli(argv: readonly string[]): Promise<void> {
  const exitWhenDone = EXIT_WHEN_DONE.has(argv[0] ?? "");
  // A runner started by `tern agent` keeps its output in one stream (see one-stream.ts); the
  // deploy command's stdout is the agent's to read, so it keeps it.
  if (argv[0] === "execute") (await import("./one-stream.js")).routeStdoutToStderrIfAsked();
  if (exitWhenDone) {
    // The agent reading our output may be gone (killed): a closed pipe must not crash the run.
    process.stdout.on("error", () => {});
    process.stderr.on("error", () => {});
  }
  const code = await main(argv);
  if (exitWhenDone) {
    // Let buffered output reach the pipe first.
    process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
  } else {
    process.exitCode = code;
  }
}

// In the runner bundle, the lease keeper's worker thread loads this file too: it runs no command.
if (isMainThread && isEntryModule(import.meta.url)) await runCli(process.argv.slice(2));
