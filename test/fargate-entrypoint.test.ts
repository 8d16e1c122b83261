/**
 * The runner image's entrypoint (packages/env-fargate/docker/entrypoint.sh) as a process, since
 * no Docker daemon is available here: what it refuses before starting tern, and that it execs
 * the command with TERN_HOME set. test/fargate.test.ts runs every task through it as well.
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./support/cli.js";

const ENTRYPOINT = join(ROOT, "packages", "env-fargate", "docker", "entrypoint.sh");
let bin: string;

function entrypoint(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string; pid: number | undefined }> {
  return new Promise((resolve) => {
    const child = execFile(
      "sh",
      [ENTRYPOINT, ...args],
      { env: { PATH: `${bin}:/usr/bin:/bin`, ...env } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr, pid: child.pid });
      },
    );
  });
}

beforeAll(async () => {
  bin = await mkdtemp(join(tmpdir(), "tern-entrypoint-"));
  // A stand-in `tern` that prints what it was started with.
  await writeFile(join(bin, "tern"), '#!/bin/sh\necho "tern $* run=$TERN_RUN_ID home=$TERN_HOME pid=$$"\n');
  await chmod(join(bin, "tern"), 0o755);
});
afterAll(async () => {
  await rm(bin, { recursive: true, force: true });
});

describe("the runner image's entrypoint", () => {
  it("runs `tern execute` by default, with TERN_HOME in /tmp, replacing itself (exec)", async () => {
    const result = await entrypoint([], { TERN_RUN_ID: "run-1", TERN_BACKEND: "dynamodb://tern?region=eu-west-1" });
    expect(result.code, result.stderr).toBe(0);
    // Same pid: the shell became tern, so StopTask's SIGTERM reaches the runner itself.
    expect(result.stdout).toBe(`tern execute run=run-1 home=/tmp/tern pid=${result.pid}\n`);
  });

  it("refuses to start without a run id, a backend, or with a SQLite backend, saying what to set", async () => {
    const noRun = await entrypoint(["tern", "execute"], { TERN_BACKEND: "dynamodb://tern" });
    expect(noRun.code).toBe(64);
    expect(noRun.stderr).toMatch(/TERN_RUN_ID is not set.*FargateTaskEnvironment/);
    const noBackend = await entrypoint(["tern", "execute"], { TERN_RUN_ID: "run-1" });
    expect(noBackend.code).toBe(64);
    expect(noBackend.stderr).toMatch(/TERN_BACKEND is not set.*dynamodb:\/\//);
    const sqlite = await entrypoint(["tern", "execute"], { TERN_RUN_ID: "run-1", TERN_BACKEND: "sqlite:///x.db" });
    expect(sqlite.code).toBe(64);
    expect(sqlite.stderr).toMatch(/a file on another machine/);
    expect(`${noRun.stdout}${noBackend.stdout}${sqlite.stdout}`).toBe("");
  });

  it("passes an explicit run id and other commands through", async () => {
    const explicit = await entrypoint(["tern", "execute", "run-2"], { TERN_BACKEND: "dynamodb://tern" });
    expect(explicit.stdout).toMatch(/^tern execute run-2 /);
    const other = await entrypoint(["tern", "--help"], { TERN_HOME: "/data/tern" });
    expect(other.stdout).toMatch(/^tern --help run= home=\/data\/tern /);
  });
});
