import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  registerBackendScheme,
  registerDeploymentReconciler,
  registerEnvironmentLoader,
  registerStorageLoader,
} from "@tern/core";
import { type Command, type Io, isTernError, runCommand, UsageError } from "./cli.js";
import { agentCommand } from "./commands/agent.js";
import { deployCommand, executeCommand } from "./commands/execute.js";
import { cancelCommand, flowsCommand, logsCommand, runsCommand, whyCommand } from "./commands/inspect.js";
import { registerCommand } from "./commands/register.js";
import { runCommand as runFlowCommand } from "./commands/run.js";

// tern pins SDK versions that support the Node it runs on; the SDK's notice about future Node
// support would otherwise be printed by every command that touches S3.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

// Cloud storages load their SDK only when a flow stored there is used.
registerStorageLoader("S3Storage", () => import("@tern/storage-cloud/s3"));
registerStorageLoader("GCSStorage", () => import("@tern/storage-cloud/gcs"));
registerStorageLoader("AzureStorage", () => import("@tern/storage-cloud/azure"));
// FargateTaskEnvironment (and the sweep's view of ECS tasks) loads the ECS SDK only when a flow
// or a run uses it.
registerEnvironmentLoader("FargateTaskEnvironment", () => import("@tern/env-fargate"));
registerDeploymentReconciler("ecs-task", async () => (await import("@tern/env-fargate")).reconcileEcsTasks);
// Likewise the DynamoDB backend, only when TERN_BACKEND names a dynamodb:// table.
registerBackendScheme("dynamodb", async (url) => {
  const { DynamoDbBackend, parseDynamoDbUrl } = await import("@tern/backend-dynamodb");
  return DynamoDbBackend.open(parseDynamoDbUrl(url));
});

const commands: readonly Command[] = [
  registerCommand,
  runFlowCommand,
  agentCommand,
  flowsCommand,
  runsCommand,
  logsCommand,
  cancelCommand,
  whyCommand,
  executeCommand,
  deployCommand,
];

function usage(): string {
  const rows = commands.filter((c) => !c.hidden).map((c) => `  ${c.name.padEnd(10)}${c.summary}`);
  return `Usage: tern <command> [options]

Commands:
${rows.join("\n")}

Run "tern <command> --help" for a command's options.
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
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    io.err(`tern: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  // Agents start runners with the same node, flags and entry point as this process.
  process.env.TERN_RUNNER_COMMAND ??= JSON.stringify([process.execPath, ...process.execArgv, process.argv[1] ?? ""]);
  try {
    return await runCommand(command, rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`tern ${error.command}: ${error.message}\nRun "tern ${error.command} --help" for usage.\n`);
      return 2;
    }
    if (isTernError(error)) {
      io.err(`tern ${command.name}: ${error.message}\n`);
      if (process.env.TERN_DEBUG) io.err(`${error.stack}\n`);
      return 1;
    }
    io.err(`tern ${command.name}: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/** Commands that run user code, which may leave timers or sockets open: they exit when done. */
const EXIT_WHEN_DONE = new Set(["execute", "deploy"]);

if (isEntryPoint()) {
  const argv = process.argv.slice(2);
  if (EXIT_WHEN_DONE.has(argv[0] ?? "")) {
    // The agent reading our output may be gone (killed): a closed pipe must not crash the run.
    process.stdout.on("error", () => {});
    process.stderr.on("error", () => {});
  }
  const code = await main(argv);
  if (EXIT_WHEN_DONE.has(argv[0] ?? "")) {
    // Let buffered output reach the pipe first.
    process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
  } else {
    process.exitCode = code;
  }
}
