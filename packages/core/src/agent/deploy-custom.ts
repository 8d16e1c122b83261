import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Deployment } from "../environment/environment.js";
import { LaunchUncertainError } from "../environment/environment.js";
import { TernError, type TernErrorCode } from "../errors.js";
import type { JsonValue } from "../runner/serialize.js";
import { exitDescription, lastErrorLine } from "./process-output.js";

/**
 * The one stdout line a deploy process (`tern deploy <runId>`) reports with: the deployment, or
 * why there is none (the error's message, never its stack; its code and whether it is transient
 * when it is a tern error). Other lines the environment's code prints are not taken for it.
 */
export type DeployReport =
  | {
      readonly details: Record<string, JsonValue>;
      /** False when the environment started nothing local, so the process's exit says nothing about the run. */
      readonly watch?: boolean;
    }
  | { readonly failed: { readonly message: string; readonly code?: string; readonly retryable?: boolean } };

/** The report on one stdout line, or undefined when the line is something else the process printed. */
export function parseDeployReport(line: string): DeployReport | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    const failed = parsed.failed as Record<string, unknown> | undefined;
    if (typeof failed === "object" && failed !== null && typeof failed.message === "string") {
      return parsed as DeployReport;
    }
    return typeof parsed.details === "object" && parsed.details !== null ? (parsed as DeployReport) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A custom environment's setup/execute, run from the flow's bundle in a child process
 * (`deploy <runId>`). The process reports on one stdout line ({@link DeployReport}) and
 * then stays until the runner it started exits, which the agent watches like a local runner.
 * A failure report becomes the error the agent fails the run with, its message as the reason.
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
  let stderr = "";
  createInterface({ input: child.stderr }).on("line", (line) => {
    stderr = `${stderr}${line}\n`.slice(-4096);
    onOutput(line);
  });
  const exited = new Promise<{ code: number | null; signal: string | null; stderrTail: string }>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal, stderrTail: stderr }));
  });
  const report = await new Promise<DeployReport | undefined>((resolve, reject) => {
    child.once("error", reject);
    let reported = false;
    createInterface({ input: child.stdout }).on("line", (line) => {
      const parsed = reported ? undefined : parseDeployReport(line);
      if (parsed === undefined) return onOutput(line);
      reported = true;
      resolve(parsed);
    });
    void exited.then(() => resolve(undefined));
  });
  if (report === undefined) {
    const { code, signal } = await exited;
    const tail = lastErrorLine(stderr);
    throw new TernError(
      "DEPLOY",
      `the custom environment's deploy process ${exitDescription(code, signal)} without reporting${tail === "" ? "" : `; its last error output: ${tail}`}`,
    );
  }
  if ("failed" in report) throw reportedError(report.failed);
  if (report.watch !== true) {
    void exited.then(({ code }) => {
      if (code !== 0) onOutput(`the deploy process exited with code ${code}`);
    });
    return { details: report.details };
  }
  return { details: report.details, exited };
}

/** The error a failure report stands for: a launch that may have happened stays uncertain. */
function reportedError(failed: { readonly message: string; readonly code?: string; readonly retryable?: boolean }) {
  if (failed.code === "LAUNCH_UNCERTAIN") return new LaunchUncertainError(failed.message);
  return new TernError((failed.code as TernErrorCode | undefined) ?? "DEPLOY", failed.message, {
    retryable: failed.retryable === true,
  });
}
