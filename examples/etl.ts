/**
 * The ETL flow of the seeds: extract a list, transform it, load it.
 *
 *   pnpm demo                 # registers it, runs it through an agent, shows the run and its logs
 *   pnpm ts examples/etl.ts   # runs it in this process
 */
import { Flow, type TaskContext, task } from "@tern/core";

export const extract = task("extract", () => [1, 2, 3]);

export const transform = task("transform", (data: number[]) => data.map((x) => x * 10));

export const load = task("load", (data: number[], ctx: TaskContext) => {
  console.log(`Here's your data: ${data}`);
  ctx.logger.info("loaded", { rows: data.length });
  return data;
});

export const flow = new Flow("etl", {}, () => {
  const e = extract();
  const t = transform(e);
  const l = load(t);
  return { loaded: l };
});

// Run in process when executed directly (`pnpm demo`), not when imported.
if (process.argv[1] === import.meta.filename) {
  const run = await flow.run({ echo: true });
  console.log(`Flow run ${run.flow} finished: ${run.state}${run.message ? ` (${run.message})` : ""}`);
  for (const taskRun of run.taskRuns) {
    console.log(`  ${taskRun.slug.padEnd(10)} ${taskRun.state.padEnd(8)} attempts=${taskRun.attempts}`);
  }
  console.log("Output of load:", JSON.stringify(run.outputs.loaded));
  process.exitCode = run.state === "Success" ? 0 : 1;
}
