/**
 * `@tern/core/runtime`: the machinery the CLI, the Lambda handlers and runner processes are
 * built from: the agent and its launchers, the runner (`executeRun`), the sweep, leases,
 * `openBackend` and the embedded SQLite backend, loading flow files. Flow authors need none of
 * it (`@tern/core`).
 *
 * @example
 * import { Agent, openBackend, RemoteLauncher } from "@tern/core/runtime";
 *
 * const agent = new Agent({ backend: await openBackend(), launcher: new RemoteLauncher() });
 * await agent.pollOnce();
 */

export {
  Agent,
  type AgentOptions,
  type DispatchOptions,
  LocalAgent,
  type LocalAgentOptions,
  type PollResult,
} from "./agent/agent.js";
export { deployFromBundle, deployRoute, type ResolvedRun, resolveRun, setupContext } from "./agent/deploy.js";
export { endOpenTaskRuns } from "./agent/end-run.js";
export { AGENT_SEEN_WINDOW_MS, type ExplainOptions, explainRun, type RunExplanation } from "./agent/explain.js";
export {
  type Launch,
  type LaunchContext,
  type Launcher,
  RemoteLauncher,
  runnerEnvironment,
} from "./agent/launcher.js";
export { DEFAULT_LEASE_MS, LeaseWatch, leaseMsFromEnv, MAX_CLOCK_SKEW_MS } from "./agent/lease.js";
export { isLeaseKeeperData, type LeaseKeeperData, runLeaseKeeper } from "./agent/lease-keeper.js";
export { runnerCommandFromEnv } from "./agent/local-launcher.js";
export { type ExecuteRunOptions, type ExecuteRunResult, executeRun, RUNNER_LEASE_MS } from "./agent/runner.js";
export { type ScheduledFlow, type ScheduleRunInput, scheduleRun } from "./agent/schedule.js";
export {
  cancelSupersededRuns,
  createScheduledRuns,
  SCHEDULE_AHEAD_MS,
  SCHEDULE_GRACE_MS,
  type ScheduledRuns,
  scheduleOfRun,
  scheduleRunKey,
  scheduleWindows,
} from "./agent/schedule-runs.js";
export { type SweepOptions, type SweptRun, sweepRuns } from "./agent/sweep.js";
export { updateRun } from "./agent/update-run.js";
export { requireRun } from "./backend/lookup.js";
export { backendUrl, openBackend } from "./backend/open.js";
export { SqliteBackend, type SqliteBackendOptions } from "./backend/sqlite.js";
export { checkSqliteDatabase, type SqliteCheckOptions, type SqliteCheckResult } from "./backend/sqlite-check.js";
export { readDeploymentOutput } from "./environment/deployment-output.js";
export type { FlowEdgeInfo, FlowTaskInfo } from "./flow/flow.js";
export { ternHome } from "./home.js";
export { readGitCheckout } from "./provenance/git.js";
export { type GitCheckout, requireCleanCheckout, scrubRemoteUrl } from "./provenance/source.js";
export {
  defaultStorage,
  defaultStorageOptionsFromText,
  defaultStorageType,
  setDefaultStorageType,
} from "./register.js";
export { formatLogLine } from "./runner/logger.js";
export { MAX_CATCH_UP_RUNS } from "./schedule/definition.js";
export { type DueTicks, dueTicks, newestTicks, ticksAfter, ticksBetween } from "./schedule/ticks.js";
export { importFlowFile } from "./storage/load-file.js";
export { forgetVerifiedManifests } from "./storage/storage.js";
export { TERN_VERSION } from "./version.js";
