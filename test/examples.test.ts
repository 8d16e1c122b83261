/**
 * Every command in an example's header works, as written, from the repository root: each
 * example's commands run in order in a shell, on a throwaway TERN_HOME (the embedded default,
 * no cloud). A header's commands are its lines indented under the comment (`*   pnpm ...`,
 * a trailing `# ...` is a comment) and any `pnpm ...` quoted in its prose.
 */
import { exec } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./support/cli.js";

const EXAMPLES = join(ROOT, "examples");

/** The commands of a file's header comment, in order. */
function headerCommands(source: string): string[] {
  const header = /^\/\*\*([\s\S]*?)\*\//.exec(source)?.[1] ?? "";
  const commands: string[] = [];
  for (const line of header.split("\n")) {
    const block = /^\s*\*\s{2,}(pnpm\s.*?)(?:\s+#.*)?$/.exec(line);
    if (block !== null) commands.push((block[1] as string).trim());
    for (const quoted of line.matchAll(/`(pnpm\s[^`]+)`/g)) commands.push((quoted[1] as string).trim());
  }
  return commands;
}

/** A placeholder in a command, filled from what the commands before it printed. */
const PLACEHOLDERS: Record<string, (printed: string) => string | undefined> = {
  // The newest run id any earlier command printed (`tern run` does).
  "<run id>": (printed) => printed.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g)?.at(-1),
};

function fill(command: string, printed: string): string {
  let filled = command;
  for (const [placeholder, value] of Object.entries(PLACEHOLDERS)) {
    if (!filled.includes(placeholder)) continue;
    const found = value(printed);
    if (found === undefined) throw new Error(`"${command}": nothing printed before it gives ${placeholder}`);
    filled = filled.replaceAll(placeholder, found);
  }
  return filled;
}

function sh(command: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    exec(command, { cwd: ROOT, env, timeout: 90_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, output: stdout + stderr });
    });
  });
}

const files = (await readdir(EXAMPLES)).filter((f) => f.endsWith(".ts")).sort();
const { scripts } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};

describe("the examples' header commands", () => {
  it("finds the commands of a header, without their comments", () => {
    const source =
      "/**\n * Run it with `pnpm ts a.ts`.\n *\n *   pnpm tern run x   # starts it\n * not   pnpm this\n */\n";
    expect(headerCommands(source)).toEqual(["pnpm ts a.ts", "pnpm tern run x"]);
  });

  it.concurrent.each(files)(
    "examples/%s: each command in its header exits 0",
    async (file) => {
      const commands = headerCommands(await readFile(join(EXAMPLES, file), "utf8"));
      expect(commands, `examples/${file} says in its header how to run it`).not.toEqual([]);
      // A script of the workspace runs tern from its sources; a bare binary (`pnpm tsx`) needs
      // built packages, which a fresh clone does not have, so it may pass here and fail there.
      for (const command of commands) {
        const script = command.split(/\s+/)[1] as string;
        expect(Object.keys(scripts), `examples/${file}: "${command}" is not a script of package.json`).toContain(
          script,
        );
      }
      const home = await mkdtemp(join(tmpdir(), "tern-example-"));
      // As a user's shell would be: no test runner's NODE_OPTIONS, no runner command set.
      const env = { ...process.env, TERN_HOME: home, NODE_OPTIONS: undefined, TERN_RUNNER_COMMAND: undefined };
      let printed = "";
      try {
        for (const command of commands) {
          const { code, output } = await sh(fill(command, printed), env);
          printed += output;
          expect(code, `examples/${file}: "${command}" exited ${code}:\n${output}`).toBe(0);
        }
      } finally {
        await rm(home, { recursive: true, force: true });
      }
    },
    180_000,
  );
});
