/**
 * Real local servers for the driver tests, each started on a random loopback port in a child
 * process and stopped after the tests (each one's quirks are noted at its starter).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";

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

/**
 * The Cloud Storage emulator of firebase-tools, without its Java parts: `StorageEmulator.start()`
 * also starts the security-rules runtime (a Java jar), so the child builds the HTTP app with
 * `createApp` and listens itself. The JSON API the SDK talks to serves every request as an admin,
 * so no rules are needed. Buckets are implicit: a request naming a bucket creates it.
 */
export async function startGcsEmulator(): Promise<LocalServer> {
  // The emulator keeps object bytes under os.tmpdir()/firebase/storage: one directory per run.
  const directory = await mkdtemp(join(tmpdir(), "tern-gcs-"));
  const lib = join(require.resolve("firebase-tools/lib/emulator/storage"), "..", "..");
  const script = `
    process.env.TMPDIR = ${JSON.stringify(directory)};
    const { StorageEmulator } = require(${JSON.stringify(join(lib, "storage", "index.js"))});
    const { createApp } = require(${JSON.stringify(join(lib, "storage", "server.js"))});
    const { EmulatorRegistry } = require(${JSON.stringify(join(lib, "registry.js"))});
    const emulator = new StorageEmulator({ projectId: "tern-test", host: "127.0.0.1", port: 0, auto_download: false });
    createApp("tern-test", emulator).then((app) => {
      const server = app.listen(0, "127.0.0.1", () => {
        emulator.args.port = server.address().port;
        EmulatorRegistry.set("storage", emulator);
        console.log("ready " + emulator.args.port);
      });
    });
    process.on("SIGTERM", () => process.exit(0));`;
  const { child, match } = await startChild(["-e", script], /ready (\d+)/, "the Cloud Storage emulator");
  return {
    endpoint: `http://127.0.0.1:${match[1]}`,
    async stop() {
      await stopChild(child);
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** Azurite's published development account (https://learn.microsoft.com/azure/storage/common/storage-use-azurite). */
export const AZURITE_ACCOUNT = {
  name: "devstoreaccount1",
  key: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
} as const;

/** A running azurite, with a connection string for its development account. */
export interface AzuriteServer extends LocalServer {
  /** `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=…;BlobEndpoint=…;` */
  connectionString(accountKey?: string): string;
}

/**
 * azurite's Blob service, in memory. `--skipApiVersionCheck` lets @azure/storage-blob send API
 * versions newer than azurite knows. The port is chosen first; another process can take it in
 * between, so a failed start is retried on a new port.
 */
export async function startAzurite(): Promise<AzuriteServer> {
  const main = require.resolve("azurite/dist/src/blob/main.js");
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = [main, "--blobHost", "127.0.0.1", "--blobPort", String(port), "--inMemoryPersistence"];
    args.push("--skipApiVersionCheck", "--disableTelemetry", "--silent");
    try {
      const ready = new RegExp(`successfully listens on http://127\\.0\\.0\\.1:${port}\\b`);
      const { child } = await startChild(args, ready, "azurite");
      const endpoint = `http://127.0.0.1:${port}`;
      return {
        endpoint,
        connectionString: (accountKey = AZURITE_ACCOUNT.key) =>
          `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT.name};AccountKey=${accountKey};` +
          `BlobEndpoint=${endpoint}/${AZURITE_ACCOUNT.name};`,
        stop: () => stopChild(child),
      };
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}
