import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { openBackend } from "../backend/open.js";
import { type Backend, environmentMatches, isTerminalRunState, labelsMatch, type RunRecord } from "../backend/types.js";
import { checkLabels, type Deployment } from "../environment/environment.js";
import { isTernError, TernError } from "../errors.js";
import {
  type AgentOptions,
  count,
  type DispatchOptions,
  type LocalAgentOptions,
  type PollResult,
  positive,
} from "./agent-options.js";
import { failDeploy, failRun, writeDeployment } from "./agent-writes.js";
import { type ResolvedRun, resolveRun } from "./deploy.js";
import type { Launcher } from "./launcher.js";
import { dueByCreatorsClock, isRunnerOwner, LeaseWatch, runnerOwner, runsDueByCreatorsClock } from "./lease.js";
import { LocalLauncher } from "./local-launcher.js";
import { exitDescription, lastErrorLine } from "./process-output.js";
import { createScheduledRuns, scheduleWindows } from "./schedule-runs.js";
import { sweepRuns } from "./sweep.js";

export type { AgentOptions, DispatchOptions, LocalAgentOptions, PollResult } from "./agent-options.js";

/**
 * Polls the backend for runs its labels satisfy, claims them with a lease, reads each flow's
 * manifest (no user code) and deploys the run through its launcher, which decides how a run
 * starts (a local runner process, a Fargate task) and how many may go at once. Runs whose local
 * process exits without reporting a final state are failed with the exit code.
 *
 * @example
 * const agent = new Agent({ launcher: new RemoteLauncher(), environmentTypes: ["FargateTaskEnvironment"] });
 * await agent.pollOnce({ deadlineMs });
 */
export class Agent {
  readonly labels: readonly string[];
  readonly agentId: string;
  private readonly launcher: Launcher;
  private readonly pollIntervalMs: number;
  private readonly leaseMs: number;
  private readonly log: (line: string) => void;
  private readonly environmentTypes: readonly string[] | undefined;
  private readonly submittedGraceMs: number | undefined;
  private backend: Backend | undefined;
  private readonly ownsBackend: boolean;
  private readonly active = new Map<string, Promise<void>>();
  /** Decides, by this process's clock, which runners' leases were lost (kept across polls). */
  private readonly leaseWatch = new LeaseWatch();
  /** Claims and deploys in flight in {@link pollOnce}. */
  private deploying = 0;
  private readonly dispatchConcurrency: number;
  private stopping = false;
  private wake: (() => void) | undefined;
  /**
   * The last poll stopped at the concurrency limit rather than because nothing was ready: a run
   * that ends then frees a slot for a waiting run, and {@link start} polls again at once.
   */
  private runsWaiting = false;
  /** A slot freed while runs were waiting, since the loop's last poll began. */
  private slotFreed = false;
  private loop: Promise<void> | undefined;

  constructor(options: AgentOptions) {
    this.labels = Object.freeze(checkLabels(options.labels ?? [], "LocalAgent labels"));
    this.launcher = options.launcher;
    this.dispatchConcurrency = count("dispatchConcurrency", options.dispatchConcurrency ?? 8);
    this.pollIntervalMs = positive("pollIntervalMs", options.pollIntervalMs ?? 2_000);
    this.leaseMs = positive("leaseMs", options.leaseMs ?? 60_000);
    this.agentId = options.agentId ?? `${hostname()}-${randomUUID().slice(0, 8)}`;
    this.log = options.log ?? (() => {});
    this.environmentTypes = options.environmentTypes;
    this.submittedGraceMs =
      options.submittedGraceMs === undefined ? undefined : positive("submittedGraceMs", options.submittedGraceMs);
    this.backend = options.backend;
    this.ownsBackend = options.backend === undefined;
  }

  /** Runs started by this agent whose local process has not exited yet. */
  get activeRuns(): number {
    return this.active.size;
  }

  /** The ids of those runs: what {@link stop} waits for. */
  get activeRunIds(): readonly string[] {
    return [...this.active.keys()];
  }

  /**
   * Claims what is ready (up to the free concurrency) and deploys it. With `deadlineMs` (epoch
   * ms), no run is claimed at or after it: a Lambda agent passes its remaining time minus a
   * margin, so every run it claims is deployed before it is frozen, and the rest stay unclaimed.
   */
  async pollOnce(options: { readonly deadlineMs?: number } = {}): Promise<PollResult> {
    const deadline = options.deadlineMs ?? Number.POSITIVE_INFINITY;
    const backend = await this.openedBackend();
    await backend.recordAgent({ id: this.agentId, labels: this.labels, lastSeenAtMs: Date.now() });
    for (const run of await sweepRuns(backend, {
      log: this.log,
      leaseWatch: this.leaseWatch,
      ...(this.submittedGraceMs === undefined ? {} : { submittedGraceMs: this.submittedGraceMs }),
    })) {
      this.log(`${run.to === "Scheduled" ? "handed back" : "ended"} run ${run.runId} ${run.to}: ${run.reason}`);
    }
    const { created: scheduled } = await createScheduledRuns(backend, {
      ...scheduleWindows(this.pollIntervalMs),
      log: this.log,
    });
    for (const id of scheduled) this.log(`created scheduled run ${id}`);
    const submitted: string[] = [];
    const failed: Array<{ runId: string; reason: string }> = [];
    let claimed = 0;
    let drained = false;
    // One claim per deploy: a lease is taken just before its run is deployed, so a slow deploy
    // cannot let the leases of runs waiting behind it expire (and another agent take them).
    // Up to dispatchConcurrency workers claim and deploy side by side: a launch is mostly
    // waiting on AWS, so one at a time cannot keep up with what ECS accepts. Deploys in flight
    // count against the launcher's `concurrency` like the runs they start.
    const worker = async (): Promise<void> => {
      while (!drained && this.active.size + this.deploying < this.launcher.concurrency && Date.now() < deadline) {
        this.deploying += 1;
        try {
          const [run] = await backend.claimRuns({
            agentId: this.agentId,
            labels: this.labels,
            limit: 1,
            leaseMs: this.leaseMs,
            ...(this.environmentTypes === undefined ? {} : { environmentTypes: this.environmentTypes }),
          });
          if (run === undefined) {
            drained = true;
            return;
          }
          claimed += 1;
          this.log(`claimed run ${run.id} (${run.flow} v${run.version})`);
          const outcome = await this.deployClaimed(backend, run, options.deadlineMs);
          if (outcome.status === "submitted") submitted.push(run.id);
          if (outcome.status === "failed") failed.push({ runId: run.id, reason: outcome.reason });
        } finally {
          this.deploying -= 1;
        }
      }
    };
    // Every worker is waited for, so no deploy outlives the poll that started it.
    const outcomes = await Promise.allSettled(Array.from({ length: this.dispatchConcurrency }, worker));
    this.runsWaiting = !drained && Date.now() < deadline;
    const broken = outcomes.find((outcome) => outcome.status === "rejected");
    if (broken !== undefined) throw broken.reason;
    // Runs due at once by their creator's clock, which is ahead of this one: claimed one by one
    // (claimRuns compares with this clock). Nothing scheduled for later is taken early.
    for (const run of await runsDueByCreatorsClock(backend, Date.now())) {
      if (this.active.size >= this.launcher.concurrency || Date.now() >= deadline) break;
      if (!labelsMatch(this.labels, run.labels) || !environmentMatches(this.environmentTypes, run.environmentType)) {
        continue;
      }
      const outcome = await this.dispatch(
        run.id,
        options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs },
      );
      if (outcome.status === "skipped") continue;
      claimed += 1;
      if (outcome.status === "submitted") submitted.push(run.id);
      else failed.push({ runId: run.id, reason: outcome.reason ?? "deploy failed" });
    }
    return { scheduled, claimed, submitted, failed };
  }

  /**
   * Claims one given run and deploys it at once, without waiting for a poll (an event trigger
   * that just created the run). Resolves what happened: `submitted`, or `skipped` with why (it
   * is not Scheduled, another agent holds it, its labels are not this agent's, it is not due).
   */
  async dispatch(
    runId: string,
    options: DispatchOptions = {},
  ): Promise<{ readonly status: "submitted" | "skipped" | "failed"; readonly reason?: string }> {
    const backend = await this.openedBackend();
    const given = options.scheduled?.run.id === runId ? options.scheduled : undefined;
    const run = given?.run ?? (await backend.getRun(runId));
    const now = Date.now();
    if (options.deadlineMs !== undefined && now >= options.deadlineMs) {
      return { status: "skipped", reason: "no time left to launch it; the agent's next poll will" };
    }
    if (run === undefined) return { status: "skipped", reason: "no such run" };
    if (run.state !== "Scheduled") return { status: "skipped", reason: `it is ${run.state}` };
    if (run.lease !== undefined && run.lease.expiresAtMs > now)
      return { status: "skipped", reason: `${run.lease.owner} holds it` };
    if (!labelsMatch(this.labels, run.labels)) {
      return {
        status: "skipped",
        reason: `its labels [${run.labels.join(", ")}] are not all among this agent's [${this.labels.join(", ")}] (an agent's labels: TERN_AGENT_LABELS for the Lambda agent)`,
      };
    }
    if (!dueByCreatorsClock(run, now)) return { status: "skipped", reason: "it is not due yet" };
    if (!environmentMatches(this.environmentTypes, run.environmentType)) {
      return { status: "skipped", reason: `it runs on ${run.environmentType}, which this agent does not deploy` };
    }
    let claimed: RunRecord;
    try {
      // A claim is a compare-and-swap like claimRuns': two dispatchers of one run, one winner.
      claimed = await backend.transitionRun({
        runId,
        expectedRevision: run.revision,
        to: "Scheduled",
        lease: { owner: this.agentId, expiresAtMs: now + this.leaseMs },
      });
    } catch (error) {
      if (isTernError(error, "RUN_CONFLICT")) return { status: "skipped", reason: "another agent took it first" };
      throw error;
    }
    this.log(`claimed run ${runId} (${run.flow} v${run.version}) for immediate dispatch`);
    const fv = given?.resolved.flowVersion;
    const known: ResolvedRun | undefined =
      given !== undefined && fv?.project === run.project && fv.flow === run.flow && fv.version === run.version
        ? {
            run: claimed,
            flowVersion: given.resolved.flowVersion,
            storage: given.resolved.storage,
            manifest: given.resolved.manifest,
            label: `"${run.flow}" version ${run.version} (project "${run.project}")`,
          }
        : undefined;
    return this.deployClaimed(backend, claimed, options.deadlineMs, known);
  }

  /** Polls until {@link stop}. */
  start(): Promise<void> {
    this.stopping = false;
    this.loop ??= (async () => {
      while (!this.stopping) {
        this.slotFreed = false;
        try {
          await this.pollOnce();
        } catch (error) {
          this.log(`poll failed: ${(error as Error).message}`);
        }
        if (this.stopping) break;
        // One poll per freed slot at most: no busy loop, however fast runs end.
        if (this.slotFreed) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.pollIntervalMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    })();
    return this.loop;
  }

  /** Stops polling and waits for the runs this agent started to finish; closes the backend it opened. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
    await this.idle();
    if (this.backend !== undefined) {
      const now = Date.now();
      await this.backend.recordAgent({ id: this.agentId, labels: this.labels, lastSeenAtMs: now, stoppedAtMs: now });
    }
    if (this.ownsBackend && this.backend !== undefined) {
      await this.backend.close();
      this.backend = undefined;
    }
  }

  /** Waits until every local process this agent started has exited and been accounted for. */
  async idle(): Promise<void> {
    while (this.active.size > 0) await Promise.all(this.active.values());
  }

  private async openedBackend(): Promise<Backend> {
    this.backend ??= await openBackend();
    return this.backend;
  }

  /**
   * Deploys a run this agent just claimed and accounts for the outcome: a launch that may or may
   * not have happened leaves the run Submitted for the sweep to hand back; any other error fails
   * the run (while it is still this agent's) with the reason.
   */
  private async deployClaimed(
    backend: Backend,
    claimed: RunRecord,
    deadlineMs: number | undefined,
    known?: ResolvedRun,
  ): Promise<{ readonly status: "submitted" | "skipped" | "failed"; readonly reason: string }> {
    try {
      if (await this.deploy(backend, claimed, known, deadlineMs)) {
        this.log(`submitted run ${claimed.id}`);
        return { status: "submitted", reason: "" };
      }
      return { status: "skipped", reason: "it changed while being deployed" };
    } catch (error) {
      if (isLaunchUncertain(error)) {
        this.log(`run ${claimed.id}: ${(error as Error).message}; left Submitted for the sweep to hand back`);
        return { status: "skipped", reason: (error as Error).message };
      }
      const reason = `deploy failed: ${(error as Error).message}`;
      if (!(await failDeploy(backend, claimed.id, reason, claimed.revision))) {
        return { status: "skipped", reason: `${reason} (the run had moved on)` };
      }
      this.log(`failed run ${claimed.id}: ${reason}`);
      return { status: "failed", reason };
    }
  }

  /**
   * Deploys a claimed run. Resolves `false` when the run changed since the claim (cancelled, or
   * taken over by another agent after the lease expired): it is not this agent's any more.
   */
  private async deploy(
    backend: Backend,
    claimed: RunRecord,
    known?: ResolvedRun,
    deadlineMs?: number,
  ): Promise<boolean> {
    const resolved = known ?? (await resolveRun(backend, claimed.id));
    if (resolved.run.revision !== claimed.revision) {
      this.log(`run ${claimed.id} changed since it was claimed (now ${resolved.run.state}); leaving it`);
      return false;
    }
    const type = resolved.manifest.environment.type;
    if (this.environmentTypes !== undefined && !this.environmentTypes.includes(type)) {
      throw new TernError(
        "ENVIRONMENT_TYPE",
        `this agent deploys only ${this.environmentTypes.join(", ")}, and flow ${resolved.label} uses ${type}. Give the flow a label this agent lacks (so another agent takes its runs), or change its environment.`,
      );
    }
    const launch = await this.launcher.prepare(backend, resolved);
    // Submitted before the runner starts, so the runner always finds its run past Scheduled. The
    // write compares against the claim's revision: if anything touched the run since (a cancel,
    // another agent after the lease expired), this agent lets it go.
    let run: RunRecord;
    try {
      run = await backend.transitionRun({
        runId: claimed.id,
        expectedRevision: claimed.revision,
        to: "Submitted",
        reason: `claimed by agent ${this.agentId}`,
        lease: null,
      });
    } catch (error) {
      if (!isTernError(error, "RUN_CONFLICT")) throw error;
      this.log(`run ${claimed.id} changed while it was being deployed; leaving it`);
      return false;
    }
    const deployment = await launch({
      backend,
      run,
      ...(deadlineMs === undefined ? {} : { deadlineMs }),
      onOutput: (line) => this.log(`run ${claimed.id.slice(0, 8)} | ${line}`),
      saveDeployment: async (details) => {
        run = await writeDeployment(backend, run, details, "launch");
      },
    });
    if (deployment.exited !== undefined) {
      const pid = deployment.details.pid;
      this.watch(backend, run.id, deployment.exited, typeof pid === "number" && pid > 0 ? runnerOwner(pid) : undefined);
    }
    await writeDeployment(backend, run, deployment.details, "record");
    return true;
  }

  /**
   * Watches a local runner until it exits; one that exits without reporting a final state fails
   * its run, unless another runner holds the run now (`owner`: the lease this runner would hold):
   * a runner that refused a run another took must not fail it.
   */
  private watch(
    backend: Backend,
    runId: string,
    exited: NonNullable<Deployment["exited"]>,
    owner: string | undefined,
  ): void {
    const done = exited
      .then(async ({ code, signal, stderrTail }) => {
        const run = await backend.getRun(runId);
        if (run === undefined || isTerminalRunState(run.state)) return;
        const holder = run.lease?.owner;
        if (owner !== undefined && isRunnerOwner(holder) && holder !== owner) {
          this.log(`run ${runId}: its runner ${exitDescription(code, signal)}; ${holder} holds the run now`);
          return;
        }
        const how = exitDescription(code, signal);
        const tail = lastErrorLine(stderrTail);
        await failRun(
          backend,
          runId,
          `the runner ${how} without reporting a final state${tail === "" ? "" : `; its last output: ${tail}`}`,
        );
        this.log(`failed run ${runId}: runner ${how}`);
      })
      .catch((error: unknown) => this.log(`watching run ${runId} failed: ${(error as Error).message}`))
      .finally(() => {
        this.active.delete(runId);
        if (this.runsWaiting) {
          this.slotFreed = true;
          this.wake?.();
        }
      });
    this.active.set(runId, done);
  }
}

/** Whether a deploy error says the launch may or may not have happened (see `LaunchUncertainError`). */
function isLaunchUncertain(error: unknown): boolean {
  return isTernError(error, "LAUNCH_UNCERTAIN");
}

/**
 * An agent that hosts its runners: each run starts as a runner process on this machine (a custom
 * environment deploys from the flow's bundle in a child process), at most `concurrency` at once.
 *
 * @example
 * const agent = new LocalAgent({ labels: ["dev"] });
 * await agent.start(); // until agent.stop()
 */
export class LocalAgent extends Agent {
  constructor(options: LocalAgentOptions = {}) {
    const { concurrency, runnerCommand, ...rest } = options;
    super({
      ...rest,
      launcher: new LocalLauncher({
        ...(concurrency === undefined ? {} : { concurrency }),
        ...(runnerCommand === undefined ? {} : { runnerCommand }),
      }),
    });
  }
}
