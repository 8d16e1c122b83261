/** `tern schedules`: every scheduled flow with its next ticks and its last run; pause and resume. */
import type { ScheduleSpec } from "@tern/core";
import type { Backend, RunRecord, ScheduleState } from "@tern/core/plugin";
import { scheduleOfRun, ticksAfter } from "@tern/core/runtime";
import { type Command, type Io, printJson, table, UsageError } from "../cli.js";
import { scheduleInWords } from "./schedule-words.js";

/** Ticks listed per schedule. */
const NEXT_TICKS = 5;
/** Runs of a flow looked through for each schedule's last run. */
const RECENT_RUNS = 200;

/** A schedule as `tern schedules --json` prints it. */
interface ScheduleView {
  readonly project: string;
  readonly flow: string;
  readonly version: number;
  readonly name: string;
  readonly schedule: string;
  /** The schedule in words (`At 09:00 (Europe/Berlin)`). */
  readonly description: string;
  readonly timezone: string;
  readonly catchUp: string;
  readonly paused: boolean;
  readonly nextTicks: ReadonlyArray<{ readonly utc: string; readonly local: string }>;
  readonly lastRun: { readonly id: string; readonly state: string; readonly scheduledAt: string } | null;
}

export const schedulesCommand: Command = {
  name: "schedules",
  help: `
Usage: tern schedules [--project P] [--json]
       tern schedules pause <flow> [--project P] [--json]
       tern schedules resume <flow> [--project P] [--json]

Lists every schedule of the flows' newest versions: the schedule in words, its time zone, the next five
ticks (in UTC and in the schedule's zone), whether it is paused, and the last run it created with
that run's state. pause stops a flow's schedules from creating runs (runs created ahead stay);
resume starts them again from where they were, by each schedule's catchUp policy.

Options:
  --project P   one project (default: every project for the list, "default" for pause and resume)
  --json        the list as [{ project, flow, version, name, schedule, description, timezone, catchUp, paused,
                nextTicks: [{ utc, local }], lastRun: { id, state, scheduledAt } | null }];
                pause and resume print { project, flow, paused, changed }`,
  options: { project: { type: "string" }, json: { type: "boolean" } },
  positionals: [0, 2],
  async run(args, { io, backend }) {
    const [sub, flow] = args.positionals;
    const project = args.values.project as string | undefined;
    const json = args.values.json === true;
    if (sub === undefined) return list(await backend(), project, json, io);
    if (sub !== "pause" && sub !== "resume") {
      throw new UsageError("schedules", `unknown subcommand "${sub}"; use pause <flow> or resume <flow>`);
    }
    if (flow === undefined) throw new UsageError("schedules", `schedules ${sub} needs a flow name`);
    const db = await backend();
    const where = project ?? "default";
    const known = (await db.listSchedules(where)).some((state) => state.flow === flow);
    if (!known) {
      throw new UsageError(
        "schedules",
        `flow "${flow}" in project "${where}" has no schedule; tern schedules lists the scheduled flows`,
      );
    }
    const changed = await db.setSchedulesPaused(where, flow, sub === "pause");
    if (json) printJson(io, { project: where, flow, paused: sub === "pause", changed });
    else io.out(`${flow}: ${changed} schedule${changed === 1 ? "" : "s"} ${sub === "pause" ? "paused" : "resumed"}\n`);
    return 0;
  },
};

async function list(db: Backend, project: string | undefined, json: boolean, io: Io): Promise<number> {
  const now = Date.now();
  const states = await db.listSchedules(project);
  const recent = new Map<string, RunRecord[]>();
  const views: ScheduleView[] = [];
  for (const state of states) {
    const flowKey = `${state.project}\0${state.flow}`;
    let runs = recent.get(flowKey);
    if (runs === undefined) {
      runs = await db.listRuns({ project: state.project, flow: state.flow, limit: RECENT_RUNS });
      recent.set(flowKey, runs);
    }
    views.push(view(state, runs, now));
  }
  if (json) {
    printJson(io, views);
    return 0;
  }
  if (views.length === 0) {
    io.out("No scheduled flows. Give a flow a schedule: new Flow(name, { schedule: { cron, timezone } }, build).\n");
    return 0;
  }
  const rows = views.map((v) => [
    `${v.project}/${v.flow} v${v.version}`,
    v.name,
    v.description,
    v.paused ? "paused" : (v.nextTicks[0]?.local ?? "-"),
    v.lastRun === null ? "-" : `${v.lastRun.id.slice(0, 8)} ${v.lastRun.state}`,
  ]);
  io.out(`${table([["FLOW", "SCHEDULE", "WHEN", "NEXT", "LAST RUN"], ...rows])}\n`);
  return 0;
}

function view(state: ScheduleState, runs: readonly RunRecord[], now: number): ScheduleView {
  const { spec } = state;
  const timezone = "cron" in spec ? spec.timezone : "UTC";
  const last = runs
    .filter((run) => run.version === state.version && scheduleOfRun(run) === spec.name && run.scheduledAtMs <= now)
    .sort((a, b) => b.scheduledAtMs - a.scheduledAtMs)[0];
  return {
    project: state.project,
    flow: state.flow,
    version: state.version,
    name: spec.name,
    schedule: describeSchedule(spec),
    description: scheduleInWords(spec),
    timezone,
    catchUp: spec.catchUp,
    paused: state.paused,
    nextTicks: ticksAfter(spec, now, NEXT_TICKS).map((tick) => ({
      utc: new Date(tick).toISOString(),
      local: localTime(tick, timezone),
    })),
    lastRun:
      last === undefined
        ? null
        : { id: last.id, state: last.state, scheduledAt: new Date(last.scheduledAtMs).toISOString() },
  };
}

/** The schedule in short: `cron 0 9 * * * (Europe/Berlin)`, `every 15m`. */
function describeSchedule(spec: ScheduleSpec): string {
  if ("cron" in spec) return `cron ${spec.cron} (${spec.timezone})`;
  return spec.anchor === "1970-01-01T00:00:00.000Z" ? `every ${spec.every}` : `every ${spec.every} from ${spec.anchor}`;
}

/** An instant as the wall-clock time of `timezone` with its offset: `2026-12-04T09:00:00+01:00`. */
export function localTime(ms: number, timezone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      timeZoneName: "longOffset",
    })
      .formatToParts(new Date(ms))
      .map((part) => [part.type, part.value]),
  );
  const offset = parts.timeZoneName === "GMT" ? "+00:00" : String(parts.timeZoneName).replace("GMT", "");
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`;
}
