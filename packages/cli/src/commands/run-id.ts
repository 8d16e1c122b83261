/** Commands that take one run id, given whole or by a unique start of it. */
import type { Backend, RunRecord } from "@tern/core/plugin";
import { requireRun } from "@tern/core/runtime";
import type { Command, Io } from "../cli.js";

/** How every command that takes a run id reads it. */
export const RUN_ID_HELP = "A run id may be given by a unique start of it (the 8 characters agents print).";

/** What a command that takes one run id gets: the run, read by its id or a unique start of it. */
export interface RunIdInvocation {
  readonly run: RunRecord;
  readonly db: Backend;
  readonly json: boolean;
  readonly io: Io;
}

/** A command of one run id and `--json`: `tern <name> <runId> [--json]`, then `more` help. */
export function runIdCommand(name: string, more: string, run: (call: RunIdInvocation) => Promise<number>): Command {
  return {
    name,
    help: `
Usage: tern ${name} <runId> [--json]

${RUN_ID_HELP}
${more}`,
    options: { json: { type: "boolean" } },
    positionals: [1, 1],
    async run(args, { io, backend }) {
      const db = await backend();
      return run({ run: await requireRun(db, args.positionals[0] as string), db, json: args.values.json === true, io });
    },
  };
}
