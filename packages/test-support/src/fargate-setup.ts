/**
 * What the end-to-end Fargate tests share (test/fargate.test.ts, test/runner-bootstrap.test.ts):
 * an agent in this process configured as the stack configures one, state in DynamoDB Local,
 * flows and assets in s3rver, ECS played by the fake, and polling the agent until runs end.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ECSClient } from "@aws-sdk/client-ecs";
import type { DynamoDbBackend } from "@tern/backend-dynamodb";
import { type Backend, isTerminalRunState, type RunRecord } from "@tern/core/plugin";
import type { LocalAgent } from "@tern/core/runtime";
import { setEcsClientFactory } from "@tern/env-fargate";
import { vi } from "vitest";
import { type DynamoDbLocal, startDynamoDbLocal } from "./dynamodb-local.js";
import type { FakeEcs } from "./fake-ecs.js";
import { openLocalTable, setEnv } from "./serverless.js";
import { type LocalServer, S3RVER_CREDENTIALS, startS3rver } from "./servers.js";

/** The repository root (this file is packages/test-support/src/fargate-setup.ts). */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** The agent's environment variables for tasks of `image`, with s3rver's key pair as the AWS credentials. */
export function agentEnv(image: string): Record<string, string> {
  return {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    TERN_ECS_CLUSTER: "tern",
    TERN_ECS_SUBNETS: "subnet-0123456789abcdef0",
    TERN_ECS_SECURITY_GROUPS: "sg-0123456789abcdef0",
    TERN_ECS_EXECUTION_ROLE_ARN: "arn:aws:iam::123456789012:role/tern-execution",
    TERN_ECS_TASK_ROLE_ARN: "arn:aws:iam::123456789012:role/tern-task",
    TERN_RUNNER_IMAGE: image,
    TERN_LOG_GROUP: "/tern/runs",
  };
}

/** Points this process's ECS clients at `fake`. */
export function useFakeEcs(fake: FakeEcs): void {
  setEcsClientFactory(
    (region) =>
      new ECSClient({ region, endpoint: fake.endpoint, credentials: { accessKeyId: "fake", secretAccessKey: "fake" } }),
  );
}

/** Writes `bin/tern` under `dir`: the CLI from the sources, as the runner image's /usr/local/bin/tern. */
export async function writeTernShim(dir: string): Promise<string> {
  const bin = join(dir, "bin");
  await mkdir(bin, { recursive: true });
  const shim = join(bin, "tern");
  await writeFile(
    shim,
    `#!/bin/sh\nexec "${process.execPath}" --conditions=@tern/source --import tsx "${join(ROOT, "packages", "cli", "src", "main.ts")}" "$@"\n`,
  );
  await chmod(shim, 0o755);
  return bin;
}

/** Polls `agent` until every run is in a final state (its sweep decides runs whose task died); returns them. */
export async function driveRuns(
  backend: Backend,
  agent: LocalAgent,
  ids: readonly string[],
  timeoutMs: number,
): Promise<RunRecord[]> {
  return vi.waitFor(
    async () => {
      await agent.pollOnce();
      const runs = await Promise.all(ids.map(async (id) => (await backend.getRun(id)) as RunRecord));
      if (!runs.every((r) => isTerminalRunState(r.state))) {
        throw new Error(`runs not finished: ${runs.map((r) => `${r.id} ${r.state} ${r.reason ?? ""}`).join("; ")}`);
      }
      return runs;
    },
    { timeout: timeoutMs, interval: 200 },
  );
}

/** DynamoDB Local and s3rver running, a backend on a fresh table, and the agent's environment set. */
export interface FargateServers {
  readonly db: DynamoDbLocal;
  readonly s3: LocalServer;
  readonly backend: DynamoDbBackend;
  /** Closes the backend, stops the servers and puts the environment back as it was. */
  close(): Promise<void>;
}

/**
 * Starts DynamoDB Local and s3rver (with `buckets`), opens a backend on a new `table`, and sets
 * `env` in this process (TERN_TEST_S3_ENDPOINT, which @tern/test-support/fargate-flows stores
 * its flows through, is set too) until `close`.
 */
export async function startFargateServers(options: {
  readonly table: string;
  readonly buckets: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}): Promise<FargateServers> {
  const [db, s3] = await Promise.all([startDynamoDbLocal(), startS3rver([...options.buckets])]);
  const restore = setEnv({ ...options.env, TERN_TEST_S3_ENDPOINT: s3.endpoint });
  const stop = async () => {
    await Promise.all([db.stop(), s3.stop()]);
    restore();
  };
  let backend: DynamoDbBackend;
  try {
    backend = await openLocalTable(db.endpoint, options.table);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    db,
    s3,
    backend,
    close: async () => {
      await backend.close();
      await stop();
    },
  };
}
