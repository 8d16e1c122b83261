/** The fake ECS's public types. */
import type { Task } from "@aws-sdk/client-ecs";
import type { FakeEcsClock } from "./clock.js";
import type { FakeEcsThrottlingOptions } from "./throttle.js";

/** The operations the fake implements; any other `X-Amz-Target` gets `UnknownOperationException`. */
export type FakeEcsOperation =
  | "RegisterTaskDefinition"
  | "DescribeTaskDefinition"
  | "ListTaskDefinitions"
  | "DeregisterTaskDefinition"
  | "RunTask"
  | "DescribeTasks"
  | "StopTask"
  | "ListTasks";

/** How a container's command becomes a local child process. */
export interface FakeEcsRunner {
  /** Replaces the first element of a container command when that element is `"tern"`. */
  readonly command: readonly string[];
  /** Added to the child's environment, before the container definition's and the override's. */
  readonly env?: Readonly<Record<string, string>>;
  /** @default - this process's working directory */
  readonly cwd?: string;
}

/** Options of {@link FakeEcs.start}. */
export interface FakeEcsOptions {
  /** @default "us-east-1" */
  readonly region?: string;
  /** Clusters that exist besides `"default"`. @default - only "default" */
  readonly clusters?: readonly string[];
  /** @default - container commands run as given (a leading "tern" is looked up on PATH; a leading "node" is this process's Node) */
  readonly runner?: FakeEcsRunner;
  /**
   * `"process"` starts the essential container's command as a child process; `"none"` starts nothing
   * and tasks stay RUNNING until StopTask or {@link FakeEcs.finishTask}.
   * @default "process"
   */
  readonly launch?: "process" | "none";
  /** Time from RunTask to RUNNING, split between PROVISIONING and PENDING; also the time to deprovision. @default 50 */
  readonly startDelayMs?: number;
  /** Time between SIGTERM and SIGKILL on StopTask (ECS's is 30 s or the container's `stopTimeout`). @default 2000 */
  readonly stopTimeoutMs?: number;
  /** Which images can be pulled; a task with any other image fails with CannotPullContainerError. @default - all */
  readonly pullableImages?: (image: string) => boolean;
  /** @default 0 (a free port) */
  readonly port?: number;
  /** The clock client tokens, throttling and forgetting stopped tasks count on. @default - real time */
  readonly clock?: FakeEcsClock;
  /** ECS's request throttling (see throttle.ts); `true`: ECS's limits. @default false (off) */
  readonly throttling?: FakeEcsThrottlingOptions | boolean;
  /** Capacity providers associated with each cluster. @default - defaultCapacityProviders for every cluster */
  readonly capacityProviders?: Readonly<Record<string, readonly string[]>>;
  /** @default ["FARGATE", "FARGATE_SPOT"] */
  readonly defaultCapacityProviders?: readonly string[];
  /** How long a STOPPED task stays visible to DescribeTasks and ListTasks, on the fake's clock. @default 3600000 (about an hour, as ECS) */
  readonly stoppedTaskRetentionMs?: number;
  /** The account's Fargate vCPU quota (see FakeEcs.setVcpuQuota). @default - none */
  readonly vcpuQuota?: number | { readonly vcpus: number; readonly answer?: "failure" | "error" };
}

/** The stop codes {@link FakeEcs.stopTaskWith} produces (the others come from the task's life). */
export type StopCodeInjection =
  | "TaskFailedToStart"
  | "SpotInterruption"
  | "TerminationNotice"
  | "ServiceSchedulerInitiated"
  | "InfrastructureHealth"
  | "UserInitiated";

/** One entry of {@link FakeEcs.failNextRunTasks}: the `failures[]` entry that RunTask returns. */
export interface RunTaskFailure {
  readonly arn?: string;
  readonly reason: string;
  readonly detail?: string;
}

/** How an injected launch ends (see {@link FakeEcs.injectLaunchOutcomes}). */
export type LaunchOutcome =
  | { readonly kind: "fail-to-start"; readonly stoppedReason: string; readonly containerReason?: string }
  | { readonly kind: "oom"; readonly afterMs: number }
  | { readonly kind: "exit"; readonly afterMs: number; readonly exitCode: number; readonly containerReason?: string };

/** A task as DescribeTasks would return it (with tags), plus what the fake ran for it. */
export interface FakeTask extends Task {
  /** The argv of the essential container's process (after the runner substitution), if it has a command. */
  readonly command?: readonly string[];
  /** What the fake added to `process.env` (minus NODE_OPTIONS) for that process. */
  readonly environment?: Readonly<Record<string, string>>;
}

/** One request the fake received, in arrival order. */
export interface FakeEcsCall {
  /** The operation name (the `X-Amz-Target` as sent when it is not ECS's). */
  readonly operation: string;
  readonly input: unknown;
  readonly atMs: number;
}

/**
 * Operations of the fake by name, each serving the SDK's request (a JSON object, which the handler
 * checks as ECS does) with its response. Each part of the fake lists the ones it serves.
 */
export type OperationHandlers = Partial<Record<FakeEcsOperation, (input: object) => unknown>>;

export const OPERATIONS: readonly FakeEcsOperation[] = [
  "RegisterTaskDefinition",
  "DescribeTaskDefinition",
  "ListTaskDefinitions",
  "DeregisterTaskDefinition",
  "RunTask",
  "DescribeTasks",
  "StopTask",
  "ListTasks",
];

export function isOperation(name: string): name is FakeEcsOperation {
  return (OPERATIONS as readonly string[]).includes(name);
}
