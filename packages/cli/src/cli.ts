import { type ParseArgsConfig, parseArgs } from "node:util";
import { TernError } from "@tern/core";
import type { Backend } from "@tern/core/plugin";

/** A mistake in how a command was called (code `USAGE`): exit code 2. */
export class UsageError extends TernError {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super("USAGE", message);
    this.name = "UsageError";
  }
}

/** Where a command writes. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** What a command receives. */
export interface CommandContext {
  readonly io: Io;
  /** The backend, opened on first use and closed after the command. */
  backend(): Promise<Backend>;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** One `tern` command. */
export interface Command {
  readonly name: string;
  /** Usage lines and option descriptions, shown by `--help`. */
  readonly help: string;
  readonly options: Options;
  /** Positional arguments: `[min, max]`. */
  readonly positionals: readonly [number, number];
  run(args: ParsedArgs, context: CommandContext): Promise<number>;
}

/** Parsed options and positionals. */
export interface ParsedArgs {
  readonly values: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: readonly string[];
}

/** Parses a command's arguments strictly; unknown options and wrong counts are usage errors. */
export function parseCommandArgs(command: Command, argv: readonly string[]): ParsedArgs {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    }) as { values: Record<string, unknown>; positionals: string[] };
  } catch (error) {
    throw new UsageError(command.name, (error as Error).message);
  }
  const [min, max] = command.positionals;
  if (parsed.values.help !== true && (parsed.positionals.length < min || parsed.positionals.length > max)) {
    throw new UsageError(
      command.name,
      `expected ${countOfArguments(min, max)}, got ${parsed.positionals.length}${usageLine(command)}`,
    );
  }
  return { values: parsed.values as ParsedArgs["values"], positionals: parsed.positionals };
}

/** `1 argument`, `at least 1 argument`, `0 or 1 argument`, `0 to 2 arguments`. */
export function countOfArguments(min: number, max: number): string {
  const [count, last] =
    min === max
      ? [`${min}`, min]
      : max === Number.POSITIVE_INFINITY
        ? [`at least ${min}`, min]
        : [`${min} ${max === min + 1 ? "or" : "to"} ${max}`, max];
  return `${count} argument${last === 1 ? "" : "s"}`;
}

/** ` (usage: tern ...)`: the first usage line of a command's help, or nothing. */
function usageLine(command: Command): string {
  const usage = /^Usage: (.+)$/m.exec(command.help)?.[1];
  return usage === undefined ? "" : ` (usage: ${usage.trim()})`;
}

/** A comma-separated label list (`--labels a,b`); empty entries are rejected by the core's label check. */
export function splitLabels(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(",");
}

/** A positive integer option. */
export function intOption(command: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(command, `--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** The project option, else `TERN_PROJECT`, else `default`. */
export function projectOption(value: unknown): string {
  if (typeof value === "string") return value;
  return process.env.TERN_PROJECT?.trim() || "default";
}

/** Prints JSON with a newline. */
export function printJson(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** Runs a command with a lazily opened backend that is always closed. */
export async function runCommand(command: Command, argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommandArgs(command, argv);
  if (args.values.help === true) {
    io.out(`${command.help.trim()}\n`);
    return 0;
  }
  let backend: Backend | undefined;
  try {
    return await command.run(args, {
      io,
      backend: async () => {
        // Loaded here: `tern --help` and usage errors need none of tern's core.
        backend ??= await (await import("@tern/core/runtime")).openBackend();
        return backend;
      },
    });
  } finally {
    await backend?.close();
  }
}

/** `2026-11-21 05:06:07` from epoch milliseconds. */
export function formatTime(ms: number | undefined): string {
  return ms === undefined ? "-" : new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

/** Left-aligned columns. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
