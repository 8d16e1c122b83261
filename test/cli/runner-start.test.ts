/**
 * What a runner process starts from. Agents started by `pnpm tern` (the CLI from its TypeScript
 * sources) run each run's runner from the CLI compiled to JavaScript, and `tern execute` of a
 * run on the embedded backend loads neither esbuild, the cloud SDKs, the DynamoDB backend nor
 * zod's other languages. Checked by the modules the process loads, not by timing
 * (`pnpm bench dispatch-local` measures the time).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, type TernHome, ternHome } from "../support/cli.js";

const run = promisify(execFile);

/** The runner command `pnpm tern agent` gives its runners (ownCommand, from the sources through tsx). */
async function agentRunnerCommand(): Promise<string[]> {
  const ownCommand = join(ROOT, "packages", "cli", "src", "own-command.ts");
  const script = `const { ownCommand } = await import(${JSON.stringify(ownCommand)}); process.stdout.write(JSON.stringify(ownCommand()));`;
  const { stdout } = await run(
    process.execPath,
    ["--conditions=@tern/source", "--import", "tsx", "--input-type=module", "-e", script],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: undefined }, timeout: 120_000 },
  );
  return JSON.parse(stdout) as string[];
}

let t: TernHome;
let command: string[];
beforeAll(async () => {
  t = await ternHome();
  expect((await t.tern(["register", "bench/fixtures/one-task.ts"])).code).toBe(0);
  command = await agentRunnerCommand();
}, 180_000);
afterAll(() => t.cleanup());

describe("the runner of a tern run from its sources", () => {
  it("is the CLI compiled to JavaScript, started by node with no loader", () => {
    const [node, entry, ...rest] = command;
    expect(node).toBe(process.execPath);
    expect(rest).toEqual([]);
    expect(entry).toMatch(/\.mjs$/);
    expect(existsSync(entry as string)).toBe(true);
  });

  it("runs a SQLite run loading no esbuild, cloud SDK, DynamoDB backend or zod locale but English", async () => {
    const { id } = await t.json<{ id: string }>(["run", "one-task"]);
    const loads = join(t.home, "loads.txt");
    const [node, ...args] = command as [string, ...string[]];
    const recorder = join(ROOT, "test", "fixtures", "record-loads.mjs");
    await run(node, ["--import", recorder, ...args, "execute", id], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: undefined, TERN_HOME: t.home, TERN_TEST_LOADS: loads },
      timeout: 60_000,
    });
    expect((await t.json<{ state: string }>(["runs", "show", id])).state).toBe("Success");
    const loaded = (await readFile(loads, "utf8")).split("\n").filter((url) => url.startsWith("file:"));
    // Something was recorded: the runner's own modules and better-sqlite3, which it does need.
    expect(loaded.some((url) => url.includes("/better-sqlite3/"))).toBe(true);
    const unneeded = loaded.filter(
      (url) =>
        /\/node_modules\/(esbuild|@aws-sdk|@smithy|@azure|@google-cloud)\//.test(url) ||
        /\/zod\/v4\/locales\/(?!en\.js)/.test(url) ||
        /\/packages\/(backend-dynamodb|storage-cloud|env-fargate)\//.test(url) ||
        /\.ts$/.test(url),
    );
    expect(unneeded).toEqual([]);
  });
});
