/**
 * CloudWatch Logs as the awslogs driver fills it, for the fake's tasks: `GetLogEvents` on the
 * stream `prefix/container/task-id` of a task whose definition sends its container's output to
 * awslogs. The stream exists once the container's process started; each line the process
 * printed (stdout and stderr) is an event, stamped when it arrived.
 */
import type { LogConfiguration } from "@aws-sdk/client-ecs";
import { EcsError } from "./errors.js";
import type { TaskRecord } from "./task-record.js";

/** The `X-Amz-Target` prefix of CloudWatch Logs' awsJson1_1 operations. */
export const LOGS_TARGET_PREFIX = "Logs_20140328.";

interface LogEvent {
  readonly timestamp: number;
  readonly message: string;
  readonly ingestionTime: number;
}

/** The awslogs group and stream of a task's essential container, if its definition sends logs. */
function streamOf(record: TaskRecord): { readonly group: string; readonly stream: string } | undefined {
  const container = record.definition.containerDefinitions?.find((c) => c.name === record.mainContainer);
  const config: LogConfiguration | undefined = container?.logConfiguration;
  const group = config?.options?.["awslogs-group"];
  const prefix = config?.options?.["awslogs-stream-prefix"];
  if (config?.logDriver !== "awslogs" || group === undefined || prefix === undefined) return undefined;
  return { group, stream: `${prefix}/${record.mainContainer}/${record.id}` };
}

/** The process's output as awslogs sends it: one event per line, each stream split on its own. */
function events(record: TaskRecord): LogEvent[] {
  const partial = { stdout: { text: "", atMs: 0 }, stderr: { text: "", atMs: 0 } };
  const found: LogEvent[] = [];
  const emit = (message: string, atMs: number): void => {
    found.push({ timestamp: atMs, message, ingestionTime: atMs });
  };
  for (const chunk of record.output) {
    const pending = partial[chunk.stream];
    if (pending.text === "") pending.atMs = chunk.atMs;
    const lines = (pending.text + chunk.text).split("\n");
    pending.text = lines.pop() ?? "";
    // The first line began with the pending text; the others, and what is left, in this chunk.
    for (const [i, line] of lines.entries()) emit(line, i === 0 ? pending.atMs : chunk.atMs);
    if (lines.length > 0) pending.atMs = chunk.atMs;
  }
  for (const pending of Object.values(partial)) if (pending.text !== "") emit(pending.text, pending.atMs);
  return found;
}

/** Serves GetLogEvents for the tasks `launched` lists. */
export function getLogEvents(launched: readonly TaskRecord[], input: Record<string, unknown>): unknown {
  const { logGroupName, logStreamName, limit, startFromHead } = input;
  if (typeof logGroupName !== "string" || typeof logStreamName !== "string") {
    throw new EcsError("InvalidParameterException", "logGroupName and logStreamName are required.");
  }
  if (limit !== undefined && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > 10_000)) {
    throw new EcsError(
      "InvalidParameterException",
      `1 validation error detected: Value '${String(limit)}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000`,
    );
  }
  const record = launched.find((r) => {
    const where = streamOf(r);
    // awslogs creates the stream when the container starts.
    const started = r.task.startedAt !== undefined || r.output.length > 0;
    return where?.group === logGroupName && where.stream === logStreamName && started;
  });
  if (record === undefined) throw new EcsError("ResourceNotFoundException", "The specified log stream does not exist.");
  const all = events(record);
  const count = typeof limit === "number" ? limit : 10_000;
  const page = startFromHead === true ? all.slice(0, count) : all.slice(Math.max(0, all.length - count));
  return {
    events: page,
    nextForwardToken: `f/${all.length}`,
    nextBackwardToken: `b/${Math.max(0, all.length - page.length)}`,
  };
}
