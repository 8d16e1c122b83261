import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Deployment } from "../environment/environment.js";
import { TernError } from "../errors.js";
import type { JsonValue } from "../runner/serialize.js";
import { lastLine } from "./process-output.js";

/**
 * A custom environment's setup/execute, run from the flow's bundle in a child process
 * (`deploy <runId>`). Its first stdout line is the deployment; the process then stays until the
 * runner it started exits, which the agent watches like a local runner.
 */
export async function deployCustom(
  runnerCommand: readonly string[],
  runId: string,
  runnerEnv: Record<string, string>,
  onOutput: (line: string) => void,
): Promise<Deployment> {
  const [command, ...args] = runnerCommand;
  if (command === undefined) throw new TernError("AGENT_OPTIONS", "LocalAgent: no runner command.");
  const child = spawn(command, [...args, "deploy", runId], {
    // The deploy process starts runners with the agent's runner command, given here explicitly.
    env: { ...process.env, ...runnerEnv, TERN_RUNNER_COMMAND: JSON.stringify(runnerCommand) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  createInterface({ input: child.stderr }).on("line", (line) => {
    stderr = `${stderr}${line}\n`.slice(-4096);
    onOutput(line);
  });
  const exited = new Promise<{ code: number | null; signal: string | null; stderrTail: string }>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal, stderrTail: stderr }));
  });
  const firstLine = await new Promise<string | undefined>((resolve, reject) => {
    child.once("error", reject);
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
      const newline = stdout.indexOf("\n");
      if (newline >= 0) resolve(stdout.slice(0, newline));
    });
    void exited.then(() => resolve(undefined));
  });
  if (firstLine === undefined) {
    const { code } = await exited;
    throw new TernError(
      "DEPLOY",
      `the custom environment's deploy process exited with code ${code}: ${lastLine(stderr)}`,
    );
  }
  // `{ details, watch }`: watch is false when the environment started nothing local (a remote
  // host, a container service), so the deploy process exiting says nothing about the run.
  let parsed: { details?: Record<string, JsonValue>; watch?: boolean };
  try {
    parsed = JSON.parse(firstLine) as typeof parsed;
  } catch {
    parsed = { details: { output: firstLine }, watch: false };
  }
  const details = parsed.details ?? {};
  if (parsed.watch !== true) {
    void exited.then(({ code }) => {
      if (code !== 0) onOutput(`the deploy process exited with code ${code}`);
    });
    return { details };
  }
  return { details, exited };
}
