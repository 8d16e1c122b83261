/**
 * `pnpm bench cli`: how fast the installed `tern` command starts, beside a bare `node -e 0`.
 * The packages are built, packed and installed with npm into a project outside the workspace
 * (as a user installs them; better-sqlite3 compiles, about two minutes), unless
 * `--project <dir>` names a project installed before. Then, alternating, REPEATS times each:
 * `node -e 0`, `tern --help`, `tern flows` and `tern runs` (the last two open the embedded
 * SQLite home, which holds one registered flow and one run).
 *
 * Prints one JSON line per command:
 * {"name":"cli","command","median_ms","node_ms","ratio","repeats","goal_met"}
 * Goal: ratio (the command's median over bare node's) at most 2.5.
 */
import { spawnSync } from "node:child_process";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CURRENT_NODE, createProject, npxTern, packWorkspace, projectEnv, ROOT } from "@tern/test-support/packed";

const REPEATS = 21;
const GOAL = 2.5;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Wall time of one process, from spawn to exit, in milliseconds. */
function timed(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(argv[0] as string, argv.slice(1), { cwd, env, stdio: ["ignore", "ignore", "pipe"] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${argv.join(" ")} exited ${result.status}: ${result.stderr}`);
  return ms;
}

export async function main(args: string[]): Promise<void> {
  const at = args.indexOf("--project");
  let project = at >= 0 ? args[at + 1] : undefined;
  let work: string | undefined;
  if (project === undefined) {
    work = await mkdtemp(join(tmpdir(), "tern-bench-cli-"));
    console.error("bench cli: building, packing and installing tern into a fresh project (about 2 minutes)...");
    const tarballs = await packWorkspace(join(work, "pack"));
    project = await createProject({ dir: join(work, "project"), type: "module", runtime: CURRENT_NODE, tarballs });
  }
  try {
    const home = await mkdtemp(join(tmpdir(), "tern-bench-cli-home-"));
    const env = projectEnv(CURRENT_NODE, { TERN_HOME: home });
    await cp(join(ROOT, "test", "fixtures", "user-project", "flows"), join(project, "flows"), { recursive: true });
    await npxTern(project, CURRENT_NODE, ["register", "flows/etl.ts", "--project", "demo"], { TERN_HOME: home });
    await npxTern(project, CURRENT_NODE, ["run", "etl", "--project", "demo"], { TERN_HOME: home });
    const tern = join(project, "node_modules", ".bin", "tern");
    const cases: Record<string, string[]> = {
      node: [process.execPath, "-e", "0"],
      "tern --help": [tern, "--help"],
      "tern flows": [tern, "flows"],
      "tern runs": [tern, "runs"],
    };
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
    // One warm-up round (file system caches), then alternating rounds.
    for (const argv of Object.values(cases)) timed(argv, project, env);
    for (let i = 0; i < REPEATS; i++) {
      for (const [name, argv] of Object.entries(cases)) times[name]?.push(timed(argv, project, env));
    }
    const nodeMs = median(times.node ?? []);
    for (const name of Object.keys(cases).filter((n) => n !== "node")) {
      const ms = median(times[name] ?? []);
      const ratio = ms / nodeMs;
      console.log(
        JSON.stringify({
          name: "cli",
          command: name,
          median_ms: Math.round(ms * 10) / 10,
          node_ms: Math.round(nodeMs * 10) / 10,
          ratio: Math.round(ratio * 100) / 100,
          repeats: REPEATS,
          goal_met: ratio <= GOAL,
        }),
      );
    }
    await rm(home, { recursive: true, force: true });
  } finally {
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  }
}
