/** A task as the fake keeps it: the ECS Task it answers with, plus its process and what it printed. */
import type { ChildProcess } from "node:child_process";
import type { Task, TaskDefinition, TaskStopCode } from "@aws-sdk/client-ecs";
import type { FakeTask, LaunchOutcome } from "./types.js";

export interface TaskRecord {
  readonly id: string;
  readonly cluster: string;
  readonly task: Task;
  readonly definition: TaskDefinition;
  readonly mainContainer: string;
  readonly awsvpc: boolean;
  readonly command: readonly string[] | undefined;
  readonly environment: Readonly<Record<string, string>>;
  readonly outcome: LaunchOutcome | undefined;
  /** What the process printed, chunk by chunk, with when each chunk arrived (epoch ms). */
  readonly output: { readonly stream: "stdout" | "stderr"; readonly text: string; readonly atMs: number }[];
  readonly timers: Set<NodeJS.Timeout>;
  child?: ChildProcess;
  exited?: Promise<void>;
  /** Set by StopTask. */
  stopRequest?: { readonly reason: string; readonly stopCode: TaskStopCode };
  /** Set by an injected outcome or finishTask: how the container ends, whatever the process says. */
  forcedEnd?: { readonly exitCode: number; readonly reason: string | undefined };
  finished: boolean;
  /** When the task reached STOPPED, on the fake's clock (it is forgotten some time after). */
  stoppedAtClockMs?: number;
  /** The Fargate vCPUs it holds until it stops (0 on EC2). */
  readonly vcpus: number;
  /** When RunTask launched it, on the fake's clock. */
  readonly launchedAtClockMs: number;
}

/** How a task ends. */
export interface TaskEnd {
  readonly stopCode: TaskStopCode;
  readonly stoppedReason: string;
  readonly exitCode?: number;
  readonly containerReason?: string;
  /** @default - the essential container */
  readonly containerName?: string;
}

/** The task as the API answers it (a copy), with or without its tags. */
export function render(record: TaskRecord, withTags: boolean): Task {
  const task = structuredClone(record.task);
  if (!withTags) delete task.tags;
  return task;
}

/** The task as the test sees it: the API's answer with its process's argv and environment. */
export function view(record: TaskRecord): FakeTask {
  return {
    ...render(record, true),
    ...(record.command === undefined ? {} : { command: [...record.command] }),
    environment: { ...record.environment },
  };
}
