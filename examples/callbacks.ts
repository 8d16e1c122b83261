/**
 * Environment callbacks (the seeds' `on_start` / `on_exit`): code that runs in the runner process
 * before the flow starts and after it ends, also when it fails.
 *
 *   pnpm tern register examples/callbacks.ts && pnpm tern run hello-callbacks && pnpm tern agent --once
 *
 * The agent prints the runner's output, so "Hello!" and "Goodbye!" show up in its log.
 */
import { appendFileSync } from "node:fs";
import { Flow, LocalEnvironment, task } from "@tern/core";

/** Also writes each line to $TERN_EXAMPLE_LOG when set, so tests can check where the callbacks ran. */
function say(line: string): void {
  console.log(line);
  const file = process.env.TERN_EXAMPLE_LOG;
  if (file) appendFileSync(file, `${line} (pid ${process.pid})\n`);
}

export const greet = task("greet", (name: string) => `Hi, ${name}`);

export const flow = new Flow(
  "hello-callbacks",
  {
    environment: new LocalEnvironment({
      onStart: ({ runId }) => say(`Hello! Starting run ${runId}`),
      onExit: ({ state, reason }) => say(`Goodbye! The run ended ${state}: ${reason}`),
    }),
  },
  () => ({ greeting: greet("tern") }),
);
