import { type FlowVersionRecord, isTerminalRunState, type RunState } from "@tern/core/plugin";
import { explainRun, requireRun, scheduleOfRun, updateRun } from "@tern/core/runtime";
import { type Command, formatTime, type Io, intOption, printJson, table, UsageError } from "../cli.js";
import { RUN_ID_HELP, runIdCommand } from "./run-id.js";
import { attemptErrorLines, taskRunName } from "./task-errors.js";

const RUN_STATES: readonly RunState[] = [
  "Scheduled",
  "Submitted",
  "Running",
  "Success",
  "Failed",
  "Cancelling",
  "Cancelled",
];

/**
 * A version's Git source in a line: `abc1234 flows/etl.ts (dirty)`, the commit shortened unless
 * `full`, the repository after `in` when `full` and known; `-` for none.
 */
function describeSource(source: FlowVersionRecord["source"], full = false): string {
  if (source === undefined) return "-";
  const commit = full ? source.commit : source.commit.slice(0, 7);
  const where = full && source.repository !== undefined ? ` in ${source.repository}` : "";
  return `${commit} ${source.path}${source.dirty ? " (dirty)" : ""}${where}`;
}

/** A list as JSON (`--json`), else as a table under a header, or a line saying it is empty. */
function printList<T>(
  io: Io,
  items: readonly T[],
  how: {
    readonly json: boolean;
    readonly empty: string;
    readonly header: string[];
    readonly row: (item: T) => string[];
  },
): number {
  if (how.json) printJson(io, items);
  else if (items.length === 0) io.out(how.empty);
  else io.out(`${table([how.header, ...items.map(how.row)])}\n`);
  return 0;
}

export const flowsCommand: Command = {
  name: "flows",
  help: `
Usage: tern flows [--project P] [--json]

Each flow with its newest version. SOURCE is the Git checkout that version was registered
from: the commit's first 7 digits and the flow file's path, "(dirty)" when the checkout had
uncommitted changes, "-" when the file was in no checkout (--json: source, with the commit in
full and the repository).`,
  options: { project: { type: "string" }, json: { type: "boolean" } },
  positionals: [0, 0],
  async run(args, { io, backend }) {
    const flows = await (await backend()).listFlows(args.values.project as string | undefined);
    return printList(io, flows, {
      json: args.values.json === true,
      empty: "No flows registered yet. Register one: tern register <file>\n",
      header: ["PROJECT", "FLOW", "VERSION", "ENVIRONMENT", "LABELS", "UPDATED", "SOURCE"],
      row: (f) => [
        f.project,
        f.flow,
        String(f.latestVersion),
        f.environmentType,
        f.labels.join(",") || "-",
        formatTime(f.updatedAtMs),
        describeSource(f.source),
      ],
    });
  },
};

export const runsCommand: Command = {
  name: "runs",
  help: `
Usage: tern runs [--project P] [--flow F] [--state S] [--limit N] [--json]
       tern runs show <id> [--json]

${RUN_ID_HELP}

States: ${RUN_STATES.join(", ")}.
"runs show" prints id, flow, version, the version's Git source (commit, file, "(dirty)",
repository; --json: source), state, reason, labels, parameters, where the run was
deployed (an ECS task and its log stream, or a local process), outputs, the state history and
the task runs (slug, state, attempts), each followed by its earlier attempts' errors when it
was retried ("attempt 1 failed: ..."; --json: attemptErrors).`,
  options: {
    project: { type: "string" },
    flow: { type: "string" },
    state: { type: "string" },
    limit: { type: "string" },
    json: { type: "boolean" },
  },
  positionals: [0, 2],
  async run(args, { io, backend }) {
    const [sub, id] = args.positionals;
    if (sub !== undefined && sub !== "show")
      throw new UsageError("runs", `unknown subcommand "${sub}"; did you mean "tern runs show ${sub}"?`);
    if (sub === "show") {
      if (id === undefined) throw new UsageError("runs", "runs show needs a run id");
      return showRun(id, args.values.json === true, io, await backend());
    }
    const state = args.values.state as string | undefined;
    if (state !== undefined && !RUN_STATES.includes(state as RunState)) {
      throw new UsageError(
        "runs",
        `--state ${JSON.stringify(state)} is not a run state; use one of ${RUN_STATES.join(", ")}`,
      );
    }
    const runs = await (await backend()).listRuns({
      ...(args.values.project === undefined ? {} : { project: args.values.project as string }),
      ...(args.values.flow === undefined ? {} : { flow: args.values.flow as string }),
      ...(state === undefined ? {} : { state: state as RunState }),
      limit: intOption("runs", "limit", args.values.limit, 100),
    });
    return printList(io, runs, {
      json: args.values.json === true,
      empty: "No runs.\n",
      header: ["ID", "FLOW", "VERSION", "STATE", "CREATED", "FROM", "REASON"],
      row: (r) => {
        const schedule = scheduleOfRun(r);
        // A run a schedule created ahead says when it is due.
        const from = schedule === undefined ? "-" : `schedule "${schedule}" at ${formatTime(r.scheduledAtMs)}`;
        return [r.id, r.flow, String(r.version), r.state, formatTime(r.createdAtMs), from, r.reason ?? ""];
      },
    });
  },
};

/** Where a run went, in a line: an ECS task with its log stream, a local process, or the raw details. */
function describeDeployment(d: Readonly<Record<string, unknown>> | undefined): string | undefined {
  if (d === undefined) return undefined;
  if (d.kind === "ecs-task") {
    if (typeof d.taskArn !== "string") return `ECS task not launched yet (launch ${String(d.launch ?? 0)})`;
    const id = d.taskArn.slice(d.taskArn.lastIndexOf("/") + 1);
    const stream =
      typeof d.logStream === "string"
        ? d.logStream
        : `${String(d.logStreamPrefix ?? "tern")}/${String(d.containerName ?? "tern-runner")}/${id}`;
    const logs = typeof d.logGroup === "string" ? `, logs ${d.logGroup} ${stream}` : "";
    const relaunched = typeof d.relaunches === "number" && d.relaunches > 0 ? `, relaunched ${d.relaunches}x` : "";
    return `ECS task ${d.taskArn} (cluster ${String(d.cluster)}, ${String(d.region)}${relaunched}${logs})`;
  }
  if (d.kind === "process" && typeof d.pid === "number") return `local process ${d.pid}`;
  return JSON.stringify(d);
}

async function showRun(
  idOrPrefix: string,
  json: boolean,
  io: Io,
  backend: Awaited<ReturnType<Parameters<Command["run"]>[1]["backend"]>>,
): Promise<number> {
  const run = await requireRun(backend, idOrPrefix);
  const { id } = run;
  const taskRuns = await backend.getTaskRuns(id);
  const history = await backend.getRunHistory(id);
  const { source } = (await backend.getFlowVersion(run.project, run.flow, run.version)) ?? {};
  if (json) {
    printJson(io, {
      ...run,
      ...(source === undefined ? {} : { source }),
      taskRuns: taskRuns.map(({ logs: _logs, ...t }) => t),
      history,
    });
    return 0;
  }
  const lines = [
    `Run ${run.id}`,
    `  flow        ${run.flow} v${run.version} (project ${run.project})`,
    `  source      ${describeSource(source, true)}`,
    `  state       ${run.state}${run.reason ? ` (${run.reason})` : ""}`,
    `  labels      ${run.labels.join(", ") || "-"}`,
    `  parameters  ${JSON.stringify(run.parameters)}`,
    `  created     ${formatTime(run.createdAtMs)}   attempts ${run.attempts}`,
  ];
  const deployed = describeDeployment(run.deployment);
  if (deployed !== undefined) lines.push(`  deployed    ${deployed}`);
  if (run.outputs !== undefined) {
    for (const [key, value] of Object.entries(run.outputs)) {
      lines.push(
        `  output      ${key} = ${value.kind === "json" ? JSON.stringify(value.value) : value.kind === "undefined" ? "undefined" : `(not serializable: ${value.reason})`}`,
      );
    }
  }
  lines.push("History");
  for (const h of history) lines.push(`  ${formatTime(h.atMs)}  ${h.state}${h.reason ? `  ${h.reason}` : ""}`);
  lines.push("Task runs");
  const rows = taskRuns.map((t) => [`  ${taskRunName(t)}`, t.state, `attempts=${t.attempts}`, t.message ?? ""]);
  // Each task's row, then its earlier attempts' errors under it. A row takes one line per
  // line break in its cells, plus one.
  const tableLines = table(rows).split("\n");
  let at = 0;
  for (const [i, t] of taskRuns.entries()) {
    const height = (rows[i] ?? []).join("").split("\n").length;
    lines.push(...tableLines.slice(at, at + height), ...attemptErrorLines(t).map((line) => `      ${line}`));
    at += height;
  }
  io.out(`${lines.join("\n")}\n`);
  return 0;
}

/** What `tern cancel` did: the run's state after it, and whether this command changed it. */
interface CancelOutcome {
  readonly code: number;
  readonly state?: RunState;
  readonly changed?: boolean;
  readonly err?: string;
}

export const cancelCommand = runIdCommand(
  "cancel",
  `
Cancels a Scheduled run at once; a Submitted or Running one becomes Cancelling, and its runner
ends it. Exit 0 when the run is (being) cancelled, 1 when it had already ended otherwise.

Options:
  --json   print { id, state, changed }: the run's state after the command, and whether the
           command changed it (false: it was already over or Cancelling)`,
  async ({ run: known, db, json, io }) => {
    const { id } = known;
    const outcome = await updateRun<CancelOutcome>(
      db,
      id,
      async (found) => {
        const run = found ?? (await requireRun(db, id));
        if (isTerminalRunState(run.state) || run.state === "Cancelling") {
          const code = run.state === "Cancelled" || run.state === "Cancelling" ? 0 : 1;
          return { done: { code, state: run.state, changed: false } };
        }
        const to = run.state === "Scheduled" ? "Cancelled" : "Cancelling";
        return {
          write: {
            to,
            reason: "cancelled by request",
            // A runner's lease stays with a Cancelling run: its runner still ends it, and if the
            // runner is dead the lease says so within one lease length.
            ...(to === "Cancelled" ? { lease: null } : {}),
          },
          result: () => ({ code: 0, state: to, changed: true }),
        };
      },
      { known, exhausted: () => ({ code: 1, err: `run ${id} kept changing; try again\n` }) },
    );
    if (outcome.err !== undefined) io.err(outcome.err);
    else if (json) printJson(io, { id, state: outcome.state, changed: outcome.changed });
    else io.out(outcome.changed ? `run ${id}: ${outcome.state}\n` : `run ${id} is already ${outcome.state}\n`);
    return outcome.code;
  },
);

/** Longer than a local agent's default poll interval (2 s). */
const WHY_WATCH_MS = 2_500;

export const whyCommand = runIdCommand(
  "why",
  `
Agents whose last poll looks older than five minutes by this machine's clock are watched for
${WHY_WATCH_MS / 1000} s: one that polls meanwhile counts as running (its clock is behind).`,
  async ({ run, db, json, io }) => {
    const explanation = await explainRun(db, run.id, { watchMs: WHY_WATCH_MS });
    if (json) {
      printJson(io, explanation);
      return 0;
    }
    io.out(`Run ${explanation.runId} is ${explanation.state}.\n`);
    for (const finding of explanation.findings) io.out(`- ${finding}\n`);
    return 0;
  },
);
