/** `tern logs`: a run's log records, and for a run whose runner never reported, the end of its process's output. */
import { type DeploymentOutput, logPages, type RunLogRecord, type RunRecord } from "@tern/core/plugin";
import { formatLogLine, readDeploymentOutput } from "@tern/core/runtime";
import type { Io } from "../cli.js";
import { runIdCommand } from "./run-id.js";
import { noOutputLines } from "./task-errors.js";

/** Log records read and written at a time by `tern logs`: its memory does not grow with the log. */
const LOG_PAGE_SIZE = 500;

/** The lines of a deployment's own output (an ECS task's CloudWatch stream) shown for a run with no record. */
export const OUTPUT_TAIL_LINES = 100;

/** Resolves once stdout has room again, so that a slow reader of a large log holds back the reads. */
function stdoutDrained(): Promise<void> {
  return new Promise((resolve) => {
    if (!process.stdout.writableNeedDrain) resolve();
    else process.stdout.once("drain", () => resolve());
  });
}

/** A record as `tern logs` prints it: a log record, or a line of the deployment's output. */
type PrintedRecord = RunLogRecord | (Omit<RunLogRecord, "source"> & { readonly source: "task-output" });

export const logsCommand = runIdCommand(
  "logs",
  `
Prints the run's log records in the order they were written, read a page at a time (constant
memory however much the run logged). --json prints them as one JSON array of
{ timeMs, level, message, source, fields?, taskRunId }. What the runner printed outside tasks
(an environment's onStart and onExit) is there too, as [runner] lines (source "runner", the run's
id as taskRunId).
A run's captured output is capped (TERN_LOG_LIMIT_BYTES, default 10 MiB); past it, one note
record says how much was dropped. A run with no record says so, with its state and the task
runs that failed or were retried (their errors and attempts, and each earlier attempt's error).
When such a run went to an ECS task, the last ${OUTPUT_TAIL_LINES} lines of the task's CloudWatch Logs stream
follow, as [task-output] lines (source "task-output"): what a container that failed before
tern's runner started printed. Reading them needs logs:GetLogEvents on the run log group.`,
  async ({ run, db, json, io }) => {
    const { id } = run;
    let written = 0;
    const print = (records: readonly PrintedRecord[]): void => {
      let text = "";
      for (const record of records) {
        if (json) {
          // The layout of JSON.stringify(records, null, 2), one element at a time.
          text += `${written === 0 ? "[\n" : ",\n"}  ${JSON.stringify(record, null, 2).replaceAll("\n", "\n  ")}`;
        } else {
          // The runner's own records (environment callbacks' output) carry the run's id.
          const label =
            record.source === "task-output"
              ? "task-output"
              : record.taskRunId === id
                ? "runner"
                : record.taskRunId.slice(id.length + 1);
          text += `${formatLogLine(label, record)}\n`;
        }
        written += 1;
      }
      io.out(text);
    };
    for await (const page of logPages(db, id, LOG_PAGE_SIZE)) {
      print(page);
      await stdoutDrained();
    }
    if (written === 0) {
      if (!json) io.out(`${noOutputLines(run, await db.getTaskRuns(id)).join("\n")}\n`);
      const output = await deploymentOutput(run, io);
      if (output !== undefined) {
        if (!json) io.out(`${outputHeading(output)}\n`);
        print(
          output.lines.map((line) => ({
            timeMs: line.timeMs,
            level: "info" as const,
            message: line.text,
            source: "task-output" as const,
            taskRunId: id,
          })),
        );
      }
    }
    if (json) io.out(written === 0 ? "[]\n" : "\n]\n");
    return 0;
  },
);

/** The deployment's output, or undefined after saying on stderr why it could not be read. */
async function deploymentOutput(run: RunRecord, io: Io): Promise<DeploymentOutput | undefined> {
  try {
    return await readDeploymentOutput(run, { limit: OUTPUT_TAIL_LINES });
  } catch (error) {
    io.err(`tern logs: ${(error as Error).message}\n`);
    return undefined;
  }
}

/** What introduces the deployment's output lines, or says why there are none. */
function outputHeading(output: DeploymentOutput): string {
  if (output.lines.length === 0) return `${output.source}: ${output.missing ?? "no output."}`;
  const which = output.truncated ? `Its last ${output.lines.length} lines` : "What it printed";
  return `${which}, from ${output.source}:`;
}
