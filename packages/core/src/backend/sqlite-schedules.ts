/** The SQLite backend's schedule states (`schedules` table): see `Backend.listDueSchedules`. */
import type { ScheduleSpec } from "../schedule/definition.js";
import { scheduleChanges } from "../schedule/state.js";
import type { SqliteConnection } from "./sqlite-connection.js";
import type { Row } from "./sqlite-schema.js";
import type { AdvanceScheduleInput, ScheduleState } from "./types.js";

function toState(row: Row): ScheduleState {
  return {
    project: row.project as string,
    flow: row.flow as string,
    version: row.version as number,
    spec: JSON.parse(row.spec as string) as ScheduleSpec,
    coveredUntilMs: row.covered_until_ms as number,
    nextTickMs: row.next_tick_ms as number,
    paused: row.paused === 1,
    revision: row.revision as number,
  };
}

/** Makes the flow's states follow `specs` of `version` (inside the registration's transaction). */
export function followSchedules(
  sql: SqliteConnection,
  flow: { readonly project: string; readonly flow: string; readonly version: number },
  specs: readonly ScheduleSpec[],
  nowMs: number,
): void {
  const existing = sql
    .all("SELECT * FROM schedules WHERE project = ? AND flow = ?", [flow.project, flow.flow])
    .map(toState);
  const { put, remove } = scheduleChanges(flow, specs, existing, nowMs);
  for (const name of remove) {
    sql.run("DELETE FROM schedules WHERE project = ? AND flow = ? AND name = ?", [flow.project, flow.flow, name]);
  }
  for (const state of put) {
    sql.run(
      `INSERT OR REPLACE INTO schedules
         (project, flow, name, version, spec, covered_until_ms, next_tick_ms, paused, revision)
       VALUES (@project, @flow, @name, @version, @spec, @coveredUntilMs, @nextTickMs, @paused, @revision)`,
      {
        project: state.project,
        flow: state.flow,
        name: state.spec.name,
        version: state.version,
        spec: JSON.stringify(state.spec),
        coveredUntilMs: state.coveredUntilMs,
        nextTickMs: state.nextTickMs,
        paused: state.paused ? 1 : 0,
        revision: state.revision,
      },
    );
  }
}

export function listDueSchedules(sql: SqliteConnection, untilMs: number, limit: number): ScheduleState[] {
  return sql
    .all(
      "SELECT * FROM schedules WHERE paused = 0 AND next_tick_ms <= ? ORDER BY next_tick_ms, project, flow, name LIMIT ?",
      [untilMs, limit],
    )
    .map(toState);
}

export function listSchedules(sql: SqliteConnection, project: string | undefined): ScheduleState[] {
  const rows =
    project === undefined
      ? sql.all("SELECT * FROM schedules ORDER BY project, flow, name")
      : sql.all("SELECT * FROM schedules WHERE project = ? ORDER BY flow, name", [project]);
  return rows.map(toState);
}

export function advanceSchedule(sql: SqliteConnection, input: AdvanceScheduleInput): boolean {
  const row = sql.get(
    `UPDATE schedules SET covered_until_ms = @coveredUntilMs, next_tick_ms = @nextTickMs, revision = revision + 1
     WHERE project = @project AND flow = @flow AND name = @name AND revision = @expectedRevision
     RETURNING revision`,
    { ...input },
  );
  return row !== undefined;
}

export function setSchedulesPaused(sql: SqliteConnection, project: string, flow: string, paused: boolean): number {
  return sql.all(
    `UPDATE schedules SET paused = @paused, revision = revision + 1
     WHERE project = @project AND flow = @flow AND paused != @paused RETURNING name`,
    { project, flow, paused: paused ? 1 : 0 },
  ).length;
}
