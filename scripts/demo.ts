/**
 * `pnpm demo`: the whole tern loop on the embedded default (SQLite state and local storage
 * under TERN_HOME, default ./.tern): register examples/etl.ts, create a run, run an agent once,
 * then show the run and what its tasks logged.
 */
import { main } from "@tern/cli";

// The agent below starts its runners as `pnpm tern agent` does: from the CLI compiled from these
// sources (built on first use and cached, see packages/cli/src/source-runner.ts).

let captured = "";
const io = {
  out: (text: string) => {
    captured += text;
    process.stdout.write(text);
  },
  err: (text: string) => process.stderr.write(text),
};

async function tern(...args: string[]): Promise<string> {
  process.stdout.write(`\n$ tern ${args.join(" ")}\n`);
  captured = "";
  const code = await main(args, io);
  if (code !== 0) {
    process.stderr.write(`demo: "tern ${args.join(" ")}" exited with ${code}\n`);
    process.exit(code);
  }
  return captured;
}

await tern("register", "examples/etl.ts", "--project", "demo");
const { id } = JSON.parse(await tern("run", "etl", "--project", "demo", "--json")) as { id: string };
await tern("agent", "--once");
await tern("runs", "show", id);
await tern("logs", id);
