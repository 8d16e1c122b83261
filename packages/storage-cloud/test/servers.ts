/**
 * Real local servers for the driver tests, each started on a random loopback port in a child
 * process and stopped after the tests (see ../../shared/TOOLING.md for each one's quirks).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running server. */
export interface LocalServer {
  readonly endpoint: string;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

/** Starts a child and resolves with the first stdout line matching `ready`. */
function startChild(
  args: readonly string[],
  ready: RegExp,
  what: string,
  timeoutMs = 60_000,
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, match });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with code ${code} before it was ready:\n${output}`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** s3rver, with one bucket created. It needs the legacy OpenSSL provider for paginated listings. */
export async function startS3rver(buckets: readonly string[]): Promise<LocalServer> {
  const directory = await mkdtemp(join(tmpdir(), "tern-s3rver-"));
  const script = `
    const S3rver = require(${JSON.stringify(require.resolve("s3rver"))});
    const server = new S3rver({ port: 0, address: "127.0.0.1", directory: ${JSON.stringify(directory)}, silent: true,
      configureBuckets: ${JSON.stringify(buckets.map((name) => ({ name })))} });
    server.run().then(({ port }) => console.log("ready " + port));
    process.on("SIGTERM", () => server.close().then(() => process.exit(0)));`;
  const { child, match } = await startChild(["--openssl-legacy-provider", "-e", script], /ready (\d+)/, "s3rver");
  return {
    endpoint: `http://127.0.0.1:${match[1]}`,
    async stop() {
      await stopChild(child);
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** Credentials s3rver accepts (it checks none). */
export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const;
