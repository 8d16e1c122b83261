/**
 * How an agent starts the runs it claims: the part of a deploy that differs between an agent that
 * hosts runners (`LocalLauncher`: runner processes, custom environments' deploy processes) and
 * one that only launches elsewhere (`RemoteLauncher`: a Lambda starting Fargate tasks).
 */
import type { Backend, RunRecord } from "../backend/types.js";
import type { Deployment, Environment } from "../environment/environment.js";
import { TernError } from "../errors.js";
import type { JsonValue } from "../runner/serialize.js";
import { deployRoute, type ResolvedRun, setupContext } from "./deploy.js";

/** What a launch is given once the agent has marked its run Submitted. */
export interface LaunchContext {
  readonly backend: Backend;
  /** The run, Submitted by the agent. */
  readonly run: RunRecord;
  /** Epoch ms by which the launch must be over (see `ExecuteContext.deadlineMs`). */
  readonly deadlineMs?: number;
  /** Receives each line a local process prints, for the agent's log. */
  readonly onOutput: (line: string) => void;
  /** Records launch details on the run before the launch returns (see `ExecuteContext.saveDeployment`). */
  readonly saveDeployment: (details: Readonly<Record<string, JsonValue>>) => Promise<void>;
}

/** Starts one prepared run; a deployment with `exited` is a local process the agent watches. */
export type Launch = (context: LaunchContext) => Promise<Deployment>;

/** How an {@link Agent} launches runs. */
export interface Launcher {
  /**
   * Most runs at once: deploys in flight plus runs whose local process has not exited
   * (`Number.POSITIVE_INFINITY`: no limit, for launches that leave nothing running here).
   */
  readonly concurrency: number;
  /**
   * Called before the run is marked Submitted: picks how to launch it and runs its environment's
   * `setup` where that happens here. Throws when this launcher cannot launch it (the agent fails
   * the run with the reason). Resolves the launch to make once the run is Submitted.
   */
  prepare(backend: Backend, resolved: ResolvedRun): Promise<Launch>;
}

/** The variables a runner needs to reach this process's backend and storage. */
export function runnerEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["TERN_HOME", "TERN_BACKEND", "TERN_DEFAULT_STORAGE"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Sets up an environment this process knows, and launches through its `execute`. */
export async function prepareEnvironment(
  backend: Backend,
  resolved: ResolvedRun,
  environment: Environment,
  runnerCommand: readonly string[],
): Promise<Launch> {
  await environment.setup(resolved.storage, setupContext(backend, resolved));
  return (context) =>
    environment.execute(resolved.storage, resolved.flowVersion.location, {
      runnerCommand,
      runnerEnv: runnerEnvironment(),
      onOutput: context.onOutput,
      run: context.run,
      flowVersion: resolved.flowVersion,
      manifest: resolved.manifest,
      backendUrl: context.backend.url,
      ...(context.deadlineMs === undefined ? {} : { deadlineMs: context.deadlineMs }),
      saveDeployment: context.saveDeployment,
    });
}

/**
 * Launches through environments that start runs elsewhere (a Fargate task), with no runner
 * command and no limit of its own: what a Lambda agent uses. Custom environments, which deploy
 * from the flow's bundle in a child process, are left to agents that host processes.
 */
export class RemoteLauncher implements Launcher {
  readonly concurrency = Number.POSITIVE_INFINITY;

  async prepare(backend: Backend, resolved: ResolvedRun): Promise<Launch> {
    const route = await deployRoute(resolved.manifest, resolved.label);
    if (route.kind === "custom") {
      throw new TernError(
        "ENVIRONMENT_TYPE",
        `Flow ${resolved.label}: environment type "${resolved.manifest.environment.type}" is a custom environment, which deploys from the flow's bundle in a child process; this agent starts no processes. Run its runs on a local agent (tern agent).`,
      );
    }
    return prepareEnvironment(backend, resolved, route.environment, []);
  }
}
