import { requireRun } from "../backend/lookup.js";
import type { Backend, FlowVersionRecord, RunRecord } from "../backend/types.js";
import { describe } from "../describe.js";
import type { Deployment, Environment, ExecuteContext, SetupContext } from "../environment/environment.js";
import { environmentFromJSON, loadEnvironmentType } from "../environment/registry.js";
import { isTernError, NotFoundError, TernError } from "../errors.js";
import type { Manifest } from "../storage/manifest.js";
import { loadStorage } from "../storage/registry.js";
import type { Storage } from "../storage/storage.js";

/** A run with everything needed to deploy or execute it. */
export interface ResolvedRun {
  readonly run: RunRecord;
  readonly flowVersion: FlowVersionRecord;
  readonly storage: Storage;
  readonly manifest: Manifest;
  /** `"etl" version 3 (project "demo")`, for messages. */
  readonly label: string;
}

/** Reads a run, its flow version, storage and manifest (no user code). */
export async function resolveRun(backend: Backend, runId: string): Promise<ResolvedRun> {
  const run = await requireRun(backend, runId);
  const flowVersion = await backend.getFlowVersion(run.project, run.flow, run.version);
  if (flowVersion === undefined) {
    throw NotFoundError.flowVersion(run.project, run.flow, run.version, backend.url, runId);
  }
  const label = `"${run.flow}" version ${run.version} (project "${run.project}")`;
  const storage = await loadStorage(flowVersion.storage);
  const manifest = await storage.readManifest(flowVersion.location, { expectedHash: flowVersion.manifestHash, label });
  return { run, flowVersion, storage, manifest, label };
}

/** How the agent will deploy a run's environment. */
export type DeployRoute = { readonly kind: "builtin"; readonly environment: Environment } | { readonly kind: "custom" };

/**
 * Picks how to deploy: a type this process knows is rebuilt from JSON; a custom type (one the
 * manifest says is not built in) runs from the flow's bundle in a child process; anything else
 * is an unknown type.
 */
export async function deployRoute(manifest: Manifest, label: string): Promise<DeployRoute> {
  const { type, options, builtin } = manifest.environment;
  if (await loadEnvironmentType(type)) return { kind: "builtin", environment: environmentFromJSON({ type, options }) };
  if (!builtin) return { kind: "custom" };
  throw new TernError(
    "ENVIRONMENT_TYPE",
    `Flow ${label}: environment type "${type}" is not available to this agent. Install the package that provides it where the agent runs (for FargateTaskEnvironment, @tern/env-fargate).`,
  );
}

/** The setup context of a resolved run: annotations go to its flow version in `backend`. */
export function setupContext(backend: Backend, resolved: ResolvedRun): SetupContext {
  const { project, flow, version } = resolved.flowVersion;
  return {
    flowVersion: resolved.flowVersion,
    manifest: resolved.manifest,
    annotate: async (annotations) => {
      await backend.annotateFlowVersion(project, flow, version, annotations);
    },
  };
}

/**
 * The child-process side of a custom environment (`tern deploy <runId>`): loads the flow's
 * verified bundle, takes the environment object the flow was defined with, and runs its
 * `setup` and `execute` here, so the agent never imports user code.
 */
export async function deployFromBundle(
  backend: Backend,
  runId: string,
  context: Omit<ExecuteContext, "run" | "flowVersion" | "manifest">,
): Promise<Deployment> {
  const resolved = await resolveRun(backend, runId);
  const { flow } = await resolved.storage.load(resolved.flowVersion.location, {
    expectedHash: resolved.flowVersion.manifestHash,
    label: resolved.label,
  });
  const environment = flow.environment as Environment | undefined;
  if (environment === undefined || environment.type !== resolved.manifest.environment.type) {
    throw new TernError(
      "ENVIRONMENT_TYPE",
      `Flow ${resolved.label}: unknown environment type "${resolved.manifest.environment.type}": the flow's bundle defines ${environment === undefined ? "no environment" : `"${environment.type}"`}. Register the flow again.`,
    );
  }
  return setupAndExecute(backend, environment, resolved, context);
}

/**
 * Runs a custom environment's `setup` then `execute`; what either throws becomes the run's
 * reason, naming the step.
 */
async function setupAndExecute(
  backend: Backend,
  environment: Environment,
  resolved: ResolvedRun,
  context: Omit<ExecuteContext, "run" | "flowVersion" | "manifest">,
): Promise<Deployment> {
  try {
    await environment.setup(resolved.storage, setupContext(backend, resolved));
  } catch (error) {
    throw stepFailed(`${environment.type}.setup`, error);
  }
  try {
    return await environment.execute(resolved.storage, resolved.flowVersion.location, {
      ...context,
      run: resolved.run,
      flowVersion: resolved.flowVersion,
      manifest: resolved.manifest,
    });
  } catch (error) {
    throw stepFailed(`${environment.type}.execute`, error);
  }
}

/**
 * A custom environment's own error, as the run's reason: where it was thrown and the error's
 * type and message (`MyEnvironment.setup threw TypeError: ...`), never its stack. A launch that
 * may have happened stays a `LaunchUncertainError`, so the agent leaves the run for the sweep.
 */
function stepFailed(step: string, error: unknown): TernError {
  if (isTernError(error, "LAUNCH_UNCERTAIN")) return error;
  return new TernError("DEPLOY", `${step} threw ${errorSummary(error)}`, {
    cause: error,
    retryable: isTernError(error) && error.retryable,
  });
}

/**
 * `TypeError: message` for any thrown value, on one line and at most 1000 characters. A subclass
 * of Error that kept the inherited name "Error" goes by its class name.
 */
function errorSummary(error: unknown): string {
  let text = `a non-error value, ${describe(error)}`;
  if (typeof error === "object" && error !== null && "message" in error) {
    const { name, message } = error as Error;
    const className = error.constructor?.name;
    const type = (name === "Error" || !name) && className ? className : name || "Error";
    text = `${type}: ${String(message)}`;
  }
  const line = text.replace(/\s*\n\s*/g, " ").trim();
  return line.length > 1000 ? `${line.slice(0, 999)}…` : line;
}
