/**
 * The imperative form of the seeds: tasks wired after the flow is made, with
 * `flow.setUpstream` and `flow.bind` (Prefect's `set_upstream` and `bind`). It runs in this
 * process:
 *
 *   pnpm ts examples/imperative.ts
 */
import { Flow, task } from "@tern/core";

export const getValue = task("get_value", () => 42);

export const outputValue = task("output_value", (v: number) => {
  console.log(v);
  return v;
});

export const flow = new Flow("My imperative flow!");

flow.setUpstream(outputValue, getValue);
flow.bind(outputValue, getValue);

if (process.argv[1] === import.meta.filename) {
  const run = await flow.run();
  console.log(`Flow run "${run.flow}" finished: ${run.state}`);
  process.exitCode = run.state === "Success" ? 0 : 1;
}
