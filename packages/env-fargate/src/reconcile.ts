import type { Task } from "@aws-sdk/client-ecs";
import type { DeploymentReconciler, JsonValue, ReconcileDecision, ReconcileResult, RunRecord } from "@tern/core/plugin";
import { BOOTSTRAP_EXIT } from "./bootstrap.js";
import { ecsClient, ecsSdk, errorName } from "./ecs.js";

/** `deployment.kind` of runs launched as ECS tasks. */
export const ECS_DEPLOYMENT_KIND = "ecs-task";

/** What a FargateTaskEnvironment records on a run (its `deployment`). */
export interface EcsDeployment {
  readonly kind: typeof ECS_DEPLOYMENT_KIND;
  /** false while a launch is being attempted (bookkeeping only: no task yet). */
  readonly launched: boolean;
  readonly region: string;
  readonly cluster: string;
  readonly taskArn?: string;
  readonly taskDefinitionArn?: string;
  readonly clientToken?: string;
  /** Counts every RunTask token this run used; the next launch uses this one. */
  readonly launch: number;
  /** Launches after a task that failed to start. */
  readonly relaunches: number;
  readonly maxRelaunches: number;
  readonly containerName?: string;
  readonly memory?: number;
  readonly logGroup?: string;
  readonly logStreamPrefix?: string;
  /** The task's CloudWatch Logs stream in `logGroup` (awslogs names it `prefix/container/task-id`). */
  readonly logStream?: string;
  /** The flow version's own image the task runs, by digest (Docker storage); absent: the runner image. */
  readonly flowImage?: string;
  /** The sha256 of the runner bundle the task's bootstrap runs; absent: the image runs `tern execute`. */
  readonly runnerBundleSha256?: string;
  /** Tasks of earlier launches and why each ended. */
  readonly previousTasks?: ReadonlyArray<{ readonly taskArn: string; readonly reason: string }>;
}

/** Reads a run's deployment as an ECS deployment, or undefined when it is not one. */
export function ecsDeployment(run: RunRecord): EcsDeployment | undefined {
  const d = run.deployment;
  if (d === undefined || d.kind !== ECS_DEPLOYMENT_KIND) return undefined;
  return d as unknown as EcsDeployment;
}

/** How a stopped task is explained, and whether launching again may help. */
export interface TaskDiagnosis {
  readonly reason: string;
  /** A launch problem worth another try (network interface timeout, capacity, Spot reclaim before start). */
  readonly transient: boolean;
  /** The runner's container started (it may have done work). */
  readonly started: boolean;
}

/**
 * Every ECS `TaskStopCode` in plain words: what happened to the task. (`diagnoseStoppedTask`
 * adds the container's exit code, reason and what to do.)
 */
export const STOP_CODE_EXPLANATIONS: Readonly<Record<string, string>> = {
  TaskFailedToStart: "ECS could not start the task (its image, network interface, secrets or capacity)",
  EssentialContainerExited: "the runner's container exited, which ends the task",
  UserInitiated: "someone or something called StopTask on the task (the console, the CLI, an agent cancelling the run)",
  ServiceSchedulerInitiated:
    "an ECS service's scheduler stopped the task (tern starts no services: something outside tern manages this task)",
  SpotInterruption: "AWS reclaimed the Fargate Spot capacity the task ran on (a two-minute notice, then SIGTERM)",
  TerminationNotice: "AWS retired the host the task ran on (maintenance), with a notice, then SIGTERM",
  InfrastructureHealth:
    "AWS stopped the task because the infrastructure under it became unhealthy (a problem on AWS's side, not the flow's)",
};

/** A stop code in plain words, or ECS's own code when it is one tern does not know yet. */
export function explainStopCode(stopCode: string | undefined): string {
  if (stopCode === undefined || stopCode === "") return "ECS gave no stop code";
  return STOP_CODE_EXPLANATIONS[stopCode] ?? `ECS stopped it with stop code ${stopCode}`;
}

const TRANSIENT_START =
  /(network interface provisioning|timeout waiting for network interface|eni.*(timeout|timed out|attach)|capacity is unavailable|insufficient capacity|RESOURCE:|SpotInterruption|TerminationNotice|ServiceSchedulerInitiated|Task failed to start: internal error|try again)/i;

function taskId(arn: string): string {
  return arn.slice(arn.lastIndexOf("/") + 1);
}

/**
 * The CloudWatch Logs stream awslogs writes the task's output to (`prefix/container/task-id`), or
 * undefined when the task definition sends no logs.
 */
export function taskLogStream(d: EcsDeployment, taskArn: string): string | undefined {
  if (d.logGroup === undefined) return undefined;
  return d.logStream ?? `${d.logStreamPrefix ?? "tern"}/${d.containerName ?? "tern-runner"}/${taskId(taskArn)}`;
}

function logsHint(d: EcsDeployment, taskArn: string): string {
  const stream = taskLogStream(d, taskArn);
  if (stream === undefined) return "";
  return ` Its output is in CloudWatch Logs group ${d.logGroup}, stream ${stream} (tern logs shows its end).`;
}

/**
 * Explains why an ECS task stopped, in plain words, from its stop code, stopped reason and the
 * runner container's exit code and reason.
 */
export function diagnoseStoppedTask(task: Task, deployment: EcsDeployment): TaskDiagnosis {
  const arn = task.taskArn ?? deployment.taskArn ?? "(unknown task)";
  const container =
    task.containers?.find((c) => c.name === (deployment.containerName ?? "tern-runner")) ?? task.containers?.[0];
  const stopped = task.stoppedReason ?? "";
  const containerReason = container?.reason ?? "";
  const exitCode = container?.exitCode;
  const all = `${task.stopCode ?? ""} ${stopped} ${containerReason}`;
  const where = `ECS task ${taskId(arn)}`;
  // The image the task ran: the flow's own (Docker storage) or the runner image.
  const flowImage = deployment.flowImage !== undefined;
  const imageRef = container?.image ?? deployment.flowImage;
  const image = `${flowImage ? "the flow's image" : "the runner image"}${imageRef === undefined ? "" : ` ${imageRef}`}`;
  if (/no matching manifest for linux\/(arm64|amd64)|exec format error|image platform/i.test(all)) {
    return {
      transient: false,
      started: false,
      reason: flowImage
        ? `${where} could not run ${image} on this CPU architecture: ${containerReason || stopped}. The image (or a native module in it) was not built for the task's runtimePlatform.cpuArchitecture: build the flow's image for that platform (DockerStorage's platform option: linux/amd64 for X86_64, linux/arm64 for ARM64) and register the flow again, or change cpuArchitecture.`
        : `${where} could not run ${image} on this CPU architecture: ${containerReason || stopped}. The image has no variant for the task's runtimePlatform.cpuArchitecture: use a multi-architecture image (or one built for that architecture), or change cpuArchitecture.`,
    };
  }
  if (/CannotPullContainerError|pull image manifest|failed to resolve ref|ImagePull/i.test(all)) {
    return {
      transient: false,
      started: false,
      reason: flowImage
        ? `${where} could not pull ${image}: ${containerReason || stopped}. Check that the image still exists in its repository (a lifecycle rule must keep the images that flow versions record), that the execution role may pull it (ecr:GetAuthorizationToken, ecr:BatchGetImage on the flow images' repository), and that the subnets reach its registry (a NAT gateway, or ECR's VPC endpoints).`
        : `${where} could not pull ${image}: ${containerReason || stopped}. Check that the image exists, that the execution role may pull it (ecr:GetAuthorizationToken, ecr:BatchGetImage), and that the subnets reach ECR (a NAT gateway or VPC endpoints).`,
    };
  }
  if (
    /OutOfMemory/i.test(all) ||
    (exitCode === 137 && task.stopCode === "EssentialContainerExited" && !/UserInitiated/.test(all))
  ) {
    return {
      transient: false,
      started: true,
      reason: `${where} ran out of memory: the runner was killed (exit code 137${containerReason === "" ? "" : `, ${containerReason}`}) with ${deployment.memory ?? "its"} MiB. Give the environment more memory (FargateTaskEnvironment's memory option), or make the flow use less.${logsHint(deployment, arn)}`,
    };
  }
  if (task.stopCode === "InfrastructureHealth") {
    const notStarted = exitCode === undefined && container?.lastStatus !== "RUNNING";
    return {
      transient: notStarted,
      started: !notStarted,
      reason: `${where} was stopped by AWS: ${STOP_CODE_EXPLANATIONS.InfrastructureHealth}${stopped === "" ? "" : ` (${stopped})`}.${notStarted ? "" : ` The flow had started, so tern does not run it again by itself: start a new run.${logsHint(deployment, arn)}`}`,
    };
  }
  if (TRANSIENT_START.test(all) && exitCode === undefined) {
    return {
      transient: true,
      started: false,
      reason: `${where} failed to start for a passing reason: ${stopped || containerReason || task.stopCode}${task.stopCode === undefined || task.stopCode === "TaskFailedToStart" ? "" : ` (${explainStopCode(task.stopCode)})`}.`,
    };
  }
  if (/ResourceInitializationError/i.test(all)) {
    return {
      transient: false,
      started: false,
      reason: `${where} failed to start: ${stopped || containerReason}. ECS could not prepare what the task needs (secrets, the log group, the registry auth): check the execution role's permissions and that the subnets reach Secrets Manager, SSM, CloudWatch Logs and ECR.`,
    };
  }
  if (
    task.stopCode === "TaskFailedToStart" ||
    (container !== undefined && exitCode === undefined && container.lastStatus !== "RUNNING")
  ) {
    return {
      transient: false,
      started: false,
      reason: `${where} failed to start: ${stopped || containerReason || "no reason given"} (${explainStopCode(task.stopCode ?? "TaskFailedToStart")}).`,
    };
  }
  if (task.stopCode === "UserInitiated") {
    return {
      transient: false,
      started: true,
      reason: `${where} was stopped: ${STOP_CODE_EXPLANATIONS.UserInitiated} (${stopped || "no reason given"}), before the runner reported a final state.${logsHint(deployment, arn)}`,
    };
  }
  if (task.stopCode === "ServiceSchedulerInitiated") {
    return {
      transient: false,
      started: exitCode !== undefined,
      reason: `${where} was stopped: ${STOP_CODE_EXPLANATIONS.ServiceSchedulerInitiated}${stopped === "" ? "" : ` (${stopped})`}. Check that no ECS service uses tern's task definitions.${logsHint(deployment, arn)}`,
    };
  }
  if (task.stopCode === "SpotInterruption" || task.stopCode === "TerminationNotice") {
    return {
      transient: false,
      started: true,
      reason: `${where} was reclaimed by AWS (${task.stopCode}: ${STOP_CODE_EXPLANATIONS[task.stopCode]}${stopped === "" ? "" : `; ${stopped}`}) while the flow ran; start a new run, or use on-demand FARGATE capacity for flows that must not be interrupted.`,
    };
  }
  return {
    transient: false,
    started: true,
    reason: `${where} stopped (${stopped || explainStopCode(task.stopCode)}): the runner exited with code ${exitCode ?? "unknown"}${containerReason === "" ? "" : ` (${containerReason})`} before reporting a final state${stopped === "" || task.stopCode === undefined ? "" : ` (${task.stopCode}: ${explainStopCode(task.stopCode)})`}.${logsHint(deployment, arn)}`,
  };
}

/**
 * Why a task stopped before its runner reported, when its exit code is one of the bootstrap's or
 * the runner's start-up codes (see BOOTSTRAP_EXIT), or undefined. Only meaningful for a run that
 * is still Submitted: once the runner has claimed the run, exit codes are the flow's business.
 */
export function startupFailure(task: Task, deployment: EcsDeployment): string | undefined {
  if (task.stopCode !== "EssentialContainerExited") return undefined;
  const container =
    task.containers?.find((c) => c.name === (deployment.containerName ?? "tern-runner")) ?? task.containers?.[0];
  const code = container?.exitCode;
  const arn = task.taskArn ?? deployment.taskArn ?? "(unknown task)";
  const where = `ECS task ${taskId(arn)}`;
  const logs = logsHint(deployment, arn);
  const bundle = deployment.runnerBundleSha256;
  if (code === BOOTSTRAP_EXIT.missingEnvironment) {
    return bundle === undefined
      ? `${where} exited with code 64 before the runner started: the runner's environment is incomplete (TERN_RUN_ID or TERN_BACKEND is missing, or TERN_BACKEND is not a shared backend). Launch runs through a tern agent with TERN_BACKEND=dynamodb://<table>?region=<region>.${logs}`
      : `${where} exited with code 64 before the runner started: the runner's environment is incomplete (TERN_RUNNER_URL, TERN_RUNNER_SHA256, TERN_RUN_ID or TERN_BACKEND is missing); the task definition and the launch must both come from a tern agent.${logs}`;
  }
  if (bundle === undefined) return undefined;
  if (code === BOOTSTRAP_EXIT.integrity) {
    return `the runner bundle's integrity check failed: ${where} downloaded a bundle whose sha256 is not ${bundle} (exit code 70), so the object was changed after deploy, and it was not run. Redeploy the stack to upload the bundle again.${logs}`;
  }
  if (code === BOOTSTRAP_EXIT.download) {
    return `${where} could not download the runner bundle (exit code 71; its log names the HTTP status): an expired launch URL (start a new run), an agent role without s3:GetObject on the bundle, a bundle object that is gone (redeploy the stack), or subnets that do not reach S3.${logs}`;
  }
  if (code === BOOTSTRAP_EXIT.load) {
    return `${where} could not write or load the runner bundle (exit code 72): the image needs Node 20 or later and a writable TERN_HOME or temporary directory.${logs}`;
  }
  return undefined;
}

/** What to do about one run given its task (undefined: ECS no longer knows the task). */
export interface RunVerdict {
  readonly decision?: ReconcileDecision;
  /** Stop the task with this reason. */
  readonly stop?: string;
}

/** How long a recorded task may be missing from DescribeTasks before the run is failed (eventual consistency). */
export const MISSING_GRACE_MS = 60_000;

/**
 * Decides a run's true state from its ECS task: a pure function, shared by the sweep and the
 * task-state event handler.
 */
export function decideRun(
  run: RunRecord,
  task: Task | undefined,
  nowMs: number,
  options: {
    readonly startTimeoutMs?: number;
    /** Why the run's runner lease is lost, as the sweep's lease watch decided (a live lease: undefined). */
    readonly leaseLost?: string;
  } = {},
): RunVerdict {
  const d = ecsDeployment(run);
  if (d === undefined || d.taskArn === undefined) return {};
  const base = { runId: run.id, expectedRevision: run.revision };
  if (task === undefined) {
    if (nowMs - run.updatedAtMs < MISSING_GRACE_MS) return {};
    return {
      decision: {
        ...base,
        to: run.state === "Cancelling" ? "Cancelled" : "Failed",
        reason: `its ECS task ${taskId(d.taskArn)} no longer exists (ECS forgets stopped tasks after about an hour) and the runner never reported a final state.`,
      },
    };
  }
  if (task.lastStatus !== "STOPPED") {
    if (run.state === "Cancelling") {
      return task.desiredStatus === "STOPPED" ? {} : { stop: `tern: run ${run.id} was cancelled` };
    }
    if (run.state === "Running" && options.leaseLost !== undefined) {
      return {
        stop: `tern: the runner of run ${run.id} stopped reporting`,
        // (The stop follows the write: a runner that renews just in time keeps its task.)
        decision: {
          ...base,
          to: "Failed",
          reason: `${options.leaseLost.replace(/\.$/, "")}; ECS task ${taskId(d.taskArn)} was still ${task.lastStatus} and was stopped.${logsHint(d, d.taskArn)}`,
        },
      };
    }
    const startTimeoutMs = options.startTimeoutMs ?? 300_000;
    if (run.state === "Submitted" && nowMs - run.updatedAtMs >= startTimeoutMs) {
      // A task stuck before its runner started (PROVISIONING, PENDING, an image that never
      // finishes pulling, a runner that cannot reach the backend): stop it rather than pay for it.
      return {
        stop: `tern: run ${run.id} did not start within ${Math.round(startTimeoutMs / 1000)} s`,
        decision: {
          ...base,
          to: "Failed",
          reason: `ECS task ${taskId(d.taskArn)} was still ${task.lastStatus ?? "starting"} ${Math.round((nowMs - run.updatedAtMs) / 1000)} s after launch and its runner never reported; the task was stopped.${logsHint(d, d.taskArn)}`,
        },
      };
    }
    return {};
  }
  const diagnosis = diagnoseStoppedTask(task, d);
  if (run.state === "Cancelling") {
    return { decision: { ...base, to: "Cancelled", reason: `cancelled; ${diagnosis.reason}` } };
  }
  const startup = run.state === "Submitted" ? startupFailure(task, d) : undefined;
  if (startup !== undefined) return { decision: { ...base, to: "Failed", reason: startup } };
  if (run.state === "Submitted" && diagnosis.transient && !diagnosis.started && d.relaunches < d.maxRelaunches) {
    const deployment: Record<string, JsonValue> = {
      ...(d as unknown as Record<string, JsonValue>),
      launched: false,
      launch: d.launch + 1,
      relaunches: d.relaunches + 1,
      previousTasks: [...(d.previousTasks ?? []), { taskArn: d.taskArn, reason: diagnosis.reason }],
    };
    delete deployment.taskArn;
    delete deployment.clientToken;
    return {
      decision: {
        ...base,
        to: "Scheduled",
        reason: `relaunching (${d.relaunches + 1} of ${d.maxRelaunches}): ${diagnosis.reason}`,
        deployment,
      },
    };
  }
  const gaveUp =
    diagnosis.transient && d.relaunches >= d.maxRelaunches ? ` Gave up after ${d.relaunches} relaunches.` : "";
  return { decision: { ...base, to: "Failed", reason: `${diagnosis.reason}${gaveUp}` } };
}

/**
 * The sweep's reconciler for runs launched as ECS tasks: describes their tasks (100 per call,
 * per region and cluster), stops the tasks of cancelled runs, and decides each run's state with
 * {@link decideRun}. Runs with no task recorded yet are left to the generic rules.
 */
export const reconcileEcsTasks: DeploymentReconciler = async (runs, { nowMs, log, submittedGraceMs, leaseLost }) => {
  const sdk = await ecsSdk();
  const untracked: string[] = [];
  const groups = new Map<string, { region: string; cluster: string; runs: RunRecord[] }>();
  for (const run of runs) {
    const d = ecsDeployment(run);
    if (d === undefined || d.launched === false || d.taskArn === undefined) {
      untracked.push(run.id);
      continue;
    }
    const key = `${d.region}|${d.cluster}`;
    const group = groups.get(key) ?? { region: d.region, cluster: d.cluster, runs: [] };
    group.runs.push(run);
    groups.set(key, group);
  }
  const decisions: ReconcileDecision[] = [];
  for (const group of groups.values()) {
    // One cluster or region failing (deleted, access denied, throttled) must not hold up the others.
    let client: Awaited<ReturnType<typeof ecsClient>>;
    try {
      client = await ecsClient(group.region);
    } catch (error) {
      log(`ECS in ${group.region} is unavailable: ${(error as Error).message}`);
      untracked.push(...group.runs.map((r) => r.id));
      continue;
    }
    const stop = async (run: RunRecord, arn: string, reason: string) => {
      await client.send(new sdk.StopTaskCommand({ cluster: group.cluster, task: arn, reason }));
      log(`stopped ECS task ${taskId(arn)} of run ${run.id}: ${reason}`);
    };
    for (let i = 0; i < group.runs.length; i += 100) {
      const batch = group.runs.slice(i, i + 100);
      const arns = batch.map((run) => ecsDeployment(run)?.taskArn as string);
      let tasks: Map<string | undefined, Task>;
      try {
        const output = await client.send(new sdk.DescribeTasksCommand({ cluster: group.cluster, tasks: arns }));
        tasks = new Map((output.tasks ?? []).map((task) => [task.taskArn, task]));
      } catch (error) {
        if (errorName(error) === "ClusterNotFoundException") {
          // The cluster is gone, and its tasks with it.
          tasks = new Map();
        } else {
          log(
            `describing ${batch.length} ECS tasks in ${group.cluster} (${group.region}) failed: ${(error as Error).message}`,
          );
          untracked.push(...batch.map((r) => r.id));
          continue;
        }
      }
      for (const run of batch) {
        const arn = ecsDeployment(run)?.taskArn as string;
        const lost = leaseLost(run);
        const verdict = decideRun(run, tasks.get(arn), nowMs, {
          startTimeoutMs: submittedGraceMs,
          ...(lost === undefined ? {} : { leaseLost: lost }),
        });
        const reason = verdict.stop;
        if (verdict.decision !== undefined) {
          decisions.push(
            reason === undefined ? verdict.decision : { ...verdict.decision, afterWrite: () => stop(run, arn, reason) },
          );
        } else if (reason !== undefined) {
          try {
            await stop(run, arn, reason);
          } catch (error) {
            // Tried again at the next sweep.
            log(`stopping ECS task ${taskId(arn)} of run ${run.id} failed: ${(error as Error).message}`);
          }
        }
      }
    }
  }
  return { decisions, untracked } satisfies ReconcileResult;
};
