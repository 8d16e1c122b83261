/**
 * The fake ECS's tasks and their lifecycle: PROVISIONING -> PENDING -> RUNNING -> DEPROVISIONING
 * -> STOPPED (awsvpc), or PENDING -> RUNNING -> STOPPING -> STOPPED otherwise, with the essential
 * container run as a local child process; StopTask's SIGTERM then SIGKILL; forgetting stopped tasks.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Task, TaskStopCode } from "@aws-sdk/client-ecs";
import type { FakeEcsClock } from "./clock.js";
import { ECS_MESSAGES } from "./errors.js";
import { type TaskEnd, type TaskRecord, view } from "./task-record.js";
import type { FakeEcsRunner, FakeTask } from "./types.js";
import { signalNumber } from "./validate.js";

export interface TaskLifecycleOptions {
  readonly clock: FakeEcsClock;
  readonly launchMode: "process" | "none";
  /** Half of the start delay: PROVISIONING to PENDING, then PENDING to the pull's end. */
  readonly halfStartDelayMs: number;
  readonly stopTimeoutMs: number;
  readonly runner: FakeEcsRunner | undefined;
  readonly pullable: (image: string) => boolean;
  readonly stoppedTaskRetentionMs: number;
}

export class Tasks {
  /** Every task still known (stopped ones are forgotten after `stoppedTaskRetentionMs`). */
  known: TaskRecord[] = [];
  /** Every task ever launched, for the test's view. */
  readonly launched: TaskRecord[] = [];
  private readonly listeners = new Set<() => void>();
  private closing = false;

  constructor(private readonly options: TaskLifecycleOptions) {}

  /** A task RunTask has just created: known from now on, started once `start` is called. */
  add(record: TaskRecord): void {
    this.known.push(record);
    this.launched.push(record);
  }

  /** Starts a task's way to RUNNING. */
  start(record: TaskRecord): void {
    this.after(record, this.options.halfStartDelayMs, () => this.provisioned(record));
  }

  /** The Fargate vCPUs held by the tasks not yet STOPPED. */
  vcpusInUse(): number {
    return this.launched
      .filter((record) => record.task.lastStatus !== "STOPPED")
      .reduce((sum, record) => sum + record.vcpus, 0);
  }

  /** SIGKILLs every task's process (when this process exits without close()). */
  killAll(): void {
    for (const record of this.launched) record.child?.kill("SIGKILL");
  }

  /** Stops every timer and process and waits for the processes to end; no task moves after. */
  async close(): Promise<void> {
    this.closing = true;
    for (const record of this.launched) {
      for (const timer of record.timers) clearTimeout(timer);
      record.timers.clear();
      record.child?.kill("SIGKILL");
    }
    await Promise.all(this.launched.map((record) => record.exited));
  }

  waitFor(arnOrId: string, status: string, timeoutMs = 10_000): Promise<FakeTask> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): boolean => {
        const record = this.find(arnOrId);
        if (record === undefined) {
          reject(new Error(`FakeEcs: no task "${arnOrId}".`));
          return true;
        }
        if (record.task.lastStatus === status) {
          resolve(view(record));
          return true;
        }
        if (record.task.lastStatus === "STOPPED") {
          reject(
            new Error(`FakeEcs: task ${record.id} stopped (${record.task.stoppedReason}) without reaching ${status}.`),
          );
          return true;
        }
        return false;
      };
      if (check()) return;
      const listener = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      timer = setTimeout(() => {
        this.listeners.delete(listener);
        const last = this.find(arnOrId)?.task.lastStatus;
        reject(new Error(`FakeEcs: task ${arnOrId} is still ${last} after ${timeoutMs} ms (waited for ${status}).`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  /** Any task ever launched (the test's view). */
  find(arnOrId: string): TaskRecord | undefined {
    return this.launched.find((record) => record.task.taskArn === arnOrId || record.id === arnOrId);
  }

  /** A task ECS still knows about (what the API answers from). */
  findKnown(arnOrId: string): TaskRecord | undefined {
    return this.known.find((record) => record.task.taskArn === arnOrId || record.id === arnOrId);
  }

  /** ECS forgets stopped tasks some time after they stop (about an hour): DescribeTasks then answers MISSING. */
  forgetStopped(): void {
    const now = this.options.clock.now();
    this.known = this.known.filter(
      (record) =>
        record.stoppedAtClockMs === undefined || now - record.stoppedAtClockMs < this.options.stoppedTaskRetentionMs,
    );
  }

  require(arnOrId: string): TaskRecord {
    const record = this.find(arnOrId);
    if (record === undefined) throw new Error(`FakeEcs: no task "${arnOrId}".`);
    return record;
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle: PROVISIONING -> PENDING -> RUNNING -> DEPROVISIONING -> STOPPED (awsvpc), or
  // PENDING -> RUNNING -> STOPPING -> STOPPED otherwise.

  provisioned(record: TaskRecord): void {
    this.update(record, { lastStatus: "PENDING", pullStartedAt: new Date() });
    const outcome = record.outcome;
    if (outcome?.kind === "fail-to-start") {
      this.finish(record, {
        stopCode: "TaskFailedToStart",
        stoppedReason: outcome.stoppedReason,
        containerReason: outcome.containerReason,
      });
      return;
    }
    const unpullable = record.task.containers?.find(
      (container) => container.image !== undefined && !this.options.pullable(container.image),
    );
    if (unpullable?.image !== undefined) {
      const reason = ECS_MESSAGES.cannotPullContainer(unpullable.image);
      this.finish(record, {
        stopCode: "TaskFailedToStart",
        stoppedReason: reason,
        containerReason: reason,
        containerName: unpullable.name,
      });
      return;
    }
    this.after(record, this.options.halfStartDelayMs, () => this.pulled(record));
  }

  private pulled(record: TaskRecord): void {
    this.update(record, { pullStoppedAt: new Date() });
    if (this.options.launchMode === "none") {
      this.running(record);
      return;
    }
    if (record.command === undefined) {
      const reason = `CannotStartContainerError: container ${record.mainContainer} has no entryPoint or command; the fake runs commands as local processes and cannot run an image's default command.`;
      this.finish(record, { stopCode: "TaskFailedToStart", stoppedReason: reason, containerReason: reason });
      return;
    }
    this.spawnContainer(record, record.command);
  }

  private running(record: TaskRecord): void {
    for (const container of record.task.containers ?? []) container.lastStatus = "RUNNING";
    this.update(record, { lastStatus: "RUNNING", startedAt: new Date() });
    const outcome = record.outcome;
    if (outcome?.kind === "oom") {
      this.after(record, outcome.afterMs, () =>
        this.forceEnd(record, { exitCode: 137, reason: ECS_MESSAGES.outOfMemory }),
      );
    } else if (outcome?.kind === "exit") {
      this.after(record, outcome.afterMs, () =>
        this.forceEnd(record, { exitCode: outcome.exitCode, reason: outcome.containerReason }),
      );
    }
  }

  private spawnContainer(record: TaskRecord, argv: readonly string[]): void {
    const [file = "", ...args] = argv;
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && name !== "NODE_OPTIONS") env[name] = value;
    }
    Object.assign(env, record.environment);
    const cannotStart = (message: string): void => {
      const reason = `CannotStartContainerError: ${message}`;
      this.finish(record, { stopCode: "TaskFailedToStart", stoppedReason: reason, containerReason: reason });
    };
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd: this.options.runner?.cwd,
        env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: false,
      });
    } catch (error) {
      cannotStart(error instanceof Error ? error.message : String(error));
      return;
    }
    record.child = child;
    for (const stream of ["stdout", "stderr"] as const) {
      child[stream]?.setEncoding("utf8");
      child[stream]?.on("data", (text: string) => record.output.push({ stream, text, atMs: Date.now() }));
    }
    let started = false;
    child.once("spawn", () => {
      started = true;
      if (!record.finished) this.running(record);
    });
    record.exited = new Promise<void>((resolve) => {
      let exitCode: number | undefined;
      let settled = false;
      let fallback: NodeJS.Timeout | undefined;
      const settle = (): void => {
        if (settled || exitCode === undefined) return;
        settled = true;
        clearTimeout(fallback);
        record.child = undefined;
        resolve();
        this.processExited(record, exitCode);
      };
      child.once("exit", (code, signal) => {
        exitCode = code ?? 128 + signalNumber(signal);
        // 'close' waits for the pipes to drain; a grandchild holding them must not keep the task RUNNING.
        fallback = setTimeout(settle, 500);
      });
      child.once("close", settle);
      child.once("error", (error) => {
        if (started || settled) return;
        settled = true;
        record.child = undefined;
        resolve();
        cannotStart(error.message);
      });
    });
  }

  /** The essential container's process exited with `exitCode` (128 + signal number when killed). */
  private processExited(record: TaskRecord, exitCode: number): void {
    if (record.forcedEnd !== undefined) {
      this.finish(record, {
        stopCode: "EssentialContainerExited",
        stoppedReason: ECS_MESSAGES.essentialContainerExited,
        exitCode: record.forcedEnd.exitCode,
        containerReason: record.forcedEnd.reason,
      });
    } else if (record.stopRequest !== undefined) {
      this.finish(record, {
        stopCode: record.stopRequest.stopCode,
        stoppedReason: record.stopRequest.reason,
        exitCode,
      });
    } else {
      this.finish(record, {
        stopCode: "EssentialContainerExited",
        stoppedReason: ECS_MESSAGES.essentialContainerExited,
        exitCode,
      });
    }
  }

  /** An injected outcome or finishTask: the container ends with this code, whatever its process would say. */
  forceEnd(record: TaskRecord, end: { readonly exitCode: number; readonly reason: string | undefined }): void {
    if (record.finished || record.stopRequest !== undefined || record.forcedEnd !== undefined) return;
    record.forcedEnd = end;
    if (record.child !== undefined) record.child.kill("SIGKILL");
    else this.processExited(record, end.exitCode);
  }

  requestStop(record: TaskRecord, reason: string, stopCode: TaskStopCode = "UserInitiated"): void {
    if (record.finished || record.stopRequest !== undefined || record.forcedEnd !== undefined) return;
    record.stopRequest = { reason, stopCode };
    this.update(record, {
      desiredStatus: "STOPPED",
      stoppingAt: new Date(),
      stopCode,
      stoppedReason: reason,
      // "Any tags associated with the task will be deleted." (API_StopTask)
      ...(stopCode === "UserInitiated" ? { tags: [] } : {}),
    });
    const child = record.child;
    if (child !== undefined) {
      // docker stop: SIGTERM, then SIGKILL after the stop timeout.
      child.kill("SIGTERM");
      this.after(record, this.options.stopTimeoutMs, () => child.kill("SIGKILL"));
    } else if (record.task.lastStatus === "RUNNING") {
      // launch: "none" has no process; report what a process without a SIGTERM handler would.
      this.processExited(record, 143);
    } else {
      this.finish(record, { stopCode, stoppedReason: reason });
    }
  }

  private finish(record: TaskRecord, end: TaskEnd): void {
    if (record.finished) return;
    record.finished = true;
    for (const timer of record.timers) clearTimeout(timer);
    record.timers.clear();
    const containerName = end.containerName ?? record.mainContainer;
    for (const container of record.task.containers ?? []) {
      container.lastStatus = "STOPPED";
      if (container.name !== containerName) continue;
      if (end.exitCode !== undefined) container.exitCode = end.exitCode;
      if (end.containerReason !== undefined) container.reason = end.containerReason;
    }
    const now = new Date();
    this.update(record, {
      desiredStatus: "STOPPED",
      lastStatus: record.awsvpc ? "DEPROVISIONING" : "STOPPING",
      stopCode: end.stopCode,
      stoppedReason: end.stoppedReason,
      stoppingAt: record.task.stoppingAt ?? now,
      executionStoppedAt: now,
    });
    this.after(record, this.options.halfStartDelayMs, () => {
      record.stoppedAtClockMs = this.options.clock.now();
      this.update(record, { lastStatus: "STOPPED", stoppedAt: new Date() });
    });
  }

  private update(record: TaskRecord, patch: Partial<Task>): void {
    Object.assign(record.task, patch);
    record.task.version = (record.task.version ?? 0) + 1;
    for (const listener of [...this.listeners]) listener();
  }

  after(record: TaskRecord, delayMs: number, action: () => void): void {
    if (this.closing) return;
    const timer = setTimeout(() => {
      record.timers.delete(timer);
      action();
    }, delayMs);
    record.timers.add(timer);
  }
}
