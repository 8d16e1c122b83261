import { checkLabels, type RunRecord } from "@tern/core/plugin";
import { scheduleRun } from "@tern/core/runtime";
import { type Command, type CommandContext, printJson, splitLabels, UsageError } from "../cli.js";

export const runCommand: Command = {
  name: "run",
  help: `
Usage: tern run <flow> [--project P] [--param k=v]... [--labels a,b] [--idempotency-key K] [--wait] [--json]

Creates a Scheduled run of the flow's newest version. An agent whose labels fit picks it up.

Options:
  --project P            the flow's project (default: the only project with that flow, else "default")
  --param k=v            a parameter, read by its declared schema: factor=5 is the number 5 for a
                         number parameter, the text "5" for a string one; a value that does not fit
                         is refused. Without a schema, v is read as JSON when it parses (5, true,
                         [1,2]), else as text (numbers JSON cannot hold exactly stay text)
  --labels a,b           the run's labels (default: the flow version's labels)
  --idempotency-key K    a second run with the same key returns the first run
  --wait                 wait until the run ends; exit 0 only if it succeeded
  --json                 print { "id", "state" }`,
  options: {
    project: { type: "string" },
    param: { type: "string", multiple: true },
    labels: { type: "string" },
    "idempotency-key": { type: "string" },
    wait: { type: "boolean" },
    json: { type: "boolean" },
  },
  positionals: [1, 1],
  async run(args, context) {
    const { io } = context;
    const flow = args.positionals[0] as string;
    const textParameters = parseParams(args.values.param as string[] | undefined);
    const labels = splitLabels(args.values.labels as string | undefined);
    if (labels !== undefined) checkLabels(labels, "--labels");
    const backend = await context.backend();
    const project = await resolveProject(context, flow, args.values.project as string | undefined);
    const idempotencyKey = args.values["idempotency-key"] as string | undefined;
    const { run, created } = await scheduleRun(backend, {
      project,
      flow,
      textParameters,
      ...(labels === undefined ? {} : { labels }),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    });
    if (args.values.json !== true) {
      io.out(`${created ? "created" : "existing"} run ${run.id} of ${run.flow} v${run.version} (${run.state})\n`);
    }
    let final: RunRecord = run;
    if (args.values.wait === true) final = await waitForRun(context, run.id, args.values.json !== true);
    if (args.values.json === true) printJson(io, { id: final.id, state: final.state });
    if (args.values.wait === true) return final.state === "Success" ? 0 : 1;
    return 0;
  },
};

/** `k=v` pairs as text; `scheduleRun` reads each value by its parameter's declared schema. */
export function parseParams(pairs: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError("run", `--param ${JSON.stringify(pair)} is not of the form name=value`);
    const name = pair.slice(0, eq).trim();
    if (name in out) throw new UsageError("run", `--param ${name} is given twice`);
    out[name] = pair.slice(eq + 1);
  }
  return out;
}

async function resolveProject(context: CommandContext, flow: string, given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  const fromEnv = process.env.TERN_PROJECT?.trim();
  if (fromEnv) return fromEnv;
  const projects = [
    ...new Set((await (await context.backend()).listFlows()).filter((f) => f.flow === flow).map((f) => f.project)),
  ];
  if (projects.length === 1) return projects[0] as string;
  if (projects.length > 1) {
    throw new UsageError(
      "run",
      `flow "${flow}" exists in projects ${projects.map((p) => `"${p}"`).join(", ")}; choose one with --project`,
    );
  }
  return "default";
}

async function waitForRun(context: CommandContext, runId: string, progress: boolean): Promise<RunRecord> {
  const backend = await context.backend();
  let last = "";
  for (;;) {
    const run = await backend.getRun(runId);
    if (run === undefined) throw new UsageError("run", `run ${runId} disappeared`);
    if (progress && run.state !== last)
      context.io.err(`run ${runId}: ${run.state}${run.reason ? ` (${run.reason})` : ""}\n`);
    last = run.state;
    if (run.state === "Success" || run.state === "Failed" || run.state === "Cancelled") return run;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
