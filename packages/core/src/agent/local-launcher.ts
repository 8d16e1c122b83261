/**
 * The launcher of an agent that hosts runners: environments this process knows start a runner
 * process with the runner command (the `LocalEnvironment`), custom ones deploy from the flow's
 * bundle in a child process; the limit on runs at once is the limit on those processes.
 */
import type { Backend } from "../backend/types.js";
import { TernError } from "../errors.js";
import { count } from "./agent-options.js";
import { deployRoute, type ResolvedRun } from "./deploy.js";
import { deployCustom } from "./deploy-custom.js";
import { type Launch, type Launcher, prepareEnvironment, runnerEnvironment } from "./launcher.js";

/** Options of {@link LocalLauncher}. */
export interface LocalLauncherOptions {
  /** Most runs running at once. @default 4 */
  readonly concurrency?: number;
  /**
   * The command that starts a runner; `execute <runId>` is appended.
   * @default the JSON array in `TERN_RUNNER_COMMAND`
   */
  readonly runnerCommand?: readonly string[];
}

export class LocalLauncher implements Launcher {
  readonly concurrency: number;
  readonly runnerCommand: readonly string[];

  constructor(options: LocalLauncherOptions = {}) {
    this.concurrency = count("concurrency", options.concurrency ?? 4);
    this.runnerCommand = options.runnerCommand ?? runnerCommandFromEnv();
    if (this.runnerCommand.length === 0) {
      // Refused here, before any run is claimed and then failed for want of a runner.
      throw new TernError(
        "AGENT_OPTIONS",
        'LocalAgent needs the command that starts a runner: pass runnerCommand (for example ["tern"], or [process.execPath, "/path/to/tern.mjs"]) or set TERN_RUNNER_COMMAND to a JSON array. The tern CLI passes its own command to the agents it starts.',
      );
    }
  }

  async prepare(backend: Backend, resolved: ResolvedRun): Promise<Launch> {
    const route = await deployRoute(resolved.manifest, resolved.label);
    if (route.kind === "builtin") return prepareEnvironment(backend, resolved, route.environment, this.runnerCommand);
    return (context) => deployCustom(this.runnerCommand, context.run.id, runnerEnvironment(), context.onOutput);
  }
}

/** The runner command in `TERN_RUNNER_COMMAND` (a JSON array of strings), or none when it is unset or empty. */
export function runnerCommandFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): readonly string[] {
  const raw = env.TERN_RUNNER_COMMAND;
  if (raw === undefined || raw.trim() === "") return [];
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (Array.isArray(parsed) && parsed.length > 0 && parsed.every((p) => typeof p === "string")) return parsed;
  } catch {
    // reported below
  }
  throw new TernError(
    "AGENT_OPTIONS",
    `TERN_RUNNER_COMMAND must be a JSON array of strings (e.g. ["tern"]), got ${JSON.stringify(raw)}.`,
  );
}
