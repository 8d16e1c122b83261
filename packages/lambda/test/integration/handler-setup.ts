/**
 * What the handlers' integration tests share: the Lambda environment the stack sets, pointed at
 * DynamoDB Local (state), s3rver (flows) and fake ECS services, in this process, and putting it
 * all back afterwards, so that each test file says only what differs (the fakes' delays, the
 * extra variables, a fault proxy in front of S3).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DynamoDbBackend } from "@tern/backend-dynamodb";
import { startDynamoDbLocal } from "@tern/test-support/dynamodb-local";
import { FakeEcs, type FakeEcsOptions } from "@tern/test-support/fake-ecs";
import type { ForwardingProxy } from "@tern/test-support/fault-proxy";
import { openLocalTable, serverlessEnv, setEnv } from "@tern/test-support/serverless";
import { type LocalServer, startS3rver } from "@tern/test-support/servers";
import { logger, resetRuntimes } from "../../src/runtime.js";

/** The runner image the handlers are configured with, the only one the fakes can pull. */
const IMAGE = "ghcr.io/tern/runner:test";

/** The handlers' world: started by {@link startHandlerWorld}, ended by `close`. */
export interface HandlerWorld {
  /** One fake per entry of the options' `ecs`; the first is the one AWS_ENDPOINT_URL_ECS names. */
  readonly ecs: readonly FakeEcs[];
  readonly backend: DynamoDbBackend;
  /** Resets the handlers' runtimes, closes the backend, stops the servers, puts the environment back. */
  close(): Promise<void>;
}

export interface HandlerWorldOptions {
  /** Names the temporary TERN_HOME, the table (`tern-<name>`) and the function (`tern-<name>-test`). */
  readonly name: string;
  /** The s3rver bucket the flows are stored in. */
  readonly bucket: string;
  /** Per fake ECS, what differs from cluster "tern" with no task processes. @default one plain fake */
  readonly ecs?: readonly FakeEcsOptions[];
  /** Variables on top of the stack's. */
  readonly env?: Readonly<Record<string, string>>;
  /** Starts a proxy in front of s3rver that the flows are stored through. @default s3rver itself */
  readonly s3Front?: (s3: LocalServer) => Promise<ForwardingProxy>;
}

/** Starts the servers, sets the handlers' environment and opens the backend on a new table. */
export async function startHandlerWorld(options: HandlerWorldOptions): Promise<HandlerWorld> {
  logger.setLogLevel("WARN");
  const home = await mkdtemp(join(tmpdir(), `tern-${options.name}-`));
  const fakeOptions = (options.ecs ?? [{}]).map((o) => ({
    clusters: ["tern"],
    launch: "none" as const,
    pullableImages: (pulled: string) => pulled === IMAGE,
    ...o,
  }));
  const [db, s3, ...ecs] = await Promise.all([
    startDynamoDbLocal(),
    startS3rver([options.bucket]),
    ...fakeOptions.map((o) => FakeEcs.start(o)),
  ]);
  const front = await options.s3Front?.(s3);
  const restoreEnv = setEnv({
    ...serverlessEnv({
      home,
      table: `tern-${options.name}`,
      dynamodbEndpoint: db.endpoint,
      s3Endpoint: (front ?? s3).endpoint,
      ecsEndpoint: (ecs[0] as FakeEcs).endpoint,
      image: IMAGE,
    }),
    AWS_LAMBDA_FUNCTION_NAME: `tern-${options.name}-test`,
    ...options.env,
  });
  const stop = async () => {
    await resetRuntimes();
    await Promise.all([db.stop(), front?.close(), s3.stop(), ...ecs.map((e) => e.close())]);
    restoreEnv();
    await rm(home, { recursive: true, force: true });
  };
  let backend: DynamoDbBackend;
  try {
    backend = await openLocalTable(db.endpoint, `tern-${options.name}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ecs,
    backend,
    close: async () => {
      await backend.close();
      await stop();
    },
  };
}

/**
 * Runs `body` with `values` set and the handlers' runtimes cold (so the next invocation reads its
 * configuration again), then puts the environment back and cools the runtimes again.
 */
export async function withEnv<T>(values: Readonly<Record<string, string>>, body: () => Promise<T>): Promise<T> {
  const restore = setEnv(values);
  await resetRuntimes();
  try {
    return await body();
  } finally {
    restore();
    await resetRuntimes();
  }
}
