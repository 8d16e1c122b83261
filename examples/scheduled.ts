/**
 * A flow on two schedules: a nightly report at 03:00 Berlin time, and a small check every
 * fifteen minutes with its own parameter. Agents create each tick's run once, a few minutes
 * ahead, and launch it when its time comes:
 *
 *   pnpm tern register examples/scheduled.ts
 *   pnpm tern schedules                # the next ticks, in UTC and in Berlin time
 *   pnpm tern agent --once             # creates the runs of the ticks coming due
 *   pnpm tern runs                     # FROM says which schedule created a run
 *   pnpm tern schedules pause report   # no new runs until resume
 */
import { Flow, parameter, task } from "@tern/core";

const measure = task("measure", (depth: number) => ({ depth, rows: depth * 1000 }));
const summarize = task("summarize", (m: { depth: number; rows: number }) => {
  console.log(`checked ${m.rows} rows (depth ${m.depth})`);
  return m.rows;
});

export const report = new Flow(
  "report",
  {
    description: "a nightly report, and a quick check every quarter of an hour",
    schedule: [
      { name: "nightly", cron: "0 3 * * *", timezone: "Europe/Berlin", parameters: { depth: 10 } },
      // Missed quarters (no agent ran) are skipped: only the next one counts.
      { name: "quarterly check", every: "15m", catchUp: "none" },
    ],
  },
  () => ({ rows: summarize(measure(parameter("depth", { default: 1, schema: { type: "integer", minimum: 1 } }))) }),
);
