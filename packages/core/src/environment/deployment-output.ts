/**
 * What a run's process printed where its deployment keeps it (an ECS task's CloudWatch Logs
 * stream), for runs whose runner never reported: a container that crashed before tern's runner
 * started still explains itself in `tern logs`. Each deployment kind registers its reader, loaded
 * on first use, as reconcilers are.
 */
import type { RunRecord } from "../backend/types.js";

/** One line the process printed, with when it was collected. */
export interface OutputLine {
  readonly timeMs: number;
  readonly text: string;
}

/** The last lines of a deployed run's output, or why there are none. */
export interface DeploymentOutput {
  /** Where the lines were read, in words: `CloudWatch Logs group /tern/runs, stream tern/tern-runner/4f…`. */
  readonly source: string;
  /** Oldest first; at most the limit asked for. */
  readonly lines: readonly OutputLine[];
  /** Whether older lines were left out (the limit was reached). */
  readonly truncated: boolean;
  /** Why there are no lines, when there are none (no task started, logging off, the stream is gone). */
  readonly missing?: string;
}

/**
 * Reads the last `limit` lines a run's process printed. Throws a TernError whose message says
 * what to do when they cannot be read (credentials, permissions).
 */
export type DeploymentOutputReader = (run: RunRecord, options: { readonly limit: number }) => Promise<DeploymentOutput>;

const readers = new Map<string, () => Promise<DeploymentOutputReader>>();

/** Registers the output reader of runs whose deployment details have `kind` (for example `"ecs-task"`). */
export function registerDeploymentOutputReader(kind: string, load: () => Promise<DeploymentOutputReader>): void {
  readers.set(kind, load);
}

/**
 * The last `limit` lines the run's process printed, read by its deployment kind's reader; or
 * undefined when the run has no deployment, or its kind keeps no output (a local process's
 * output went to the agent's terminal).
 */
export async function readDeploymentOutput(
  run: RunRecord,
  options: { readonly limit: number },
): Promise<DeploymentOutput | undefined> {
  const kind = run.deployment?.kind;
  const load = typeof kind === "string" ? readers.get(kind) : undefined;
  if (load === undefined) return undefined;
  return (await load())(run, options);
}
