import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "@aws-lambda-powertools/logger";
import { DynamoDbBackend, parseDynamoDbUrl } from "@tern/backend-dynamodb";
import { isTernError } from "@tern/core";
import { type Backend, registerStorageLoader } from "@tern/core/plugin";
import { Agent, forgetVerifiedManifests, RemoteLauncher } from "@tern/core/runtime";
import "@tern/env-fargate";
import { type ConfigNeeds, type LambdaConfig, loadConfig } from "./config.js";
import { parseRules, RulesError, type TriggerRule } from "./rules.js";
import { SigningKeys, signingKeySource } from "./signing-keys.js";

// The drivers of the storages a Lambda agent loads flows from (the stack's bucket, or a Git
// repository), each imported on first use.
registerStorageLoader("S3Storage", () => import("@tern/storage-cloud/s3"));
registerStorageLoader("GitStorage", () => import("@tern/storage-git"));
registerStorageLoader("DockerStorage", () => import("@tern/storage-docker"));
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
// Only /tmp is writable in Lambda: storages keep their caches (a Git repository's objects) there.
process.env.TERN_HOME ??= join(tmpdir(), "tern");

/** Structured JSON logs (one object per line, with run ids), as CloudWatch Logs Insights reads them. */
export const logger = new Logger({ serviceName: "tern" });

/** What a handler keeps between invocations of one Lambda instance. */
export interface Runtime {
  readonly config: LambdaConfig;
  readonly backend: Backend;
  /** Deploys runs: claims, environments, the sweep. */
  readonly agent: Agent;
  readonly rules: readonly TriggerRule[];
  /** The CloudEvents HMAC keys (current first, then the previous one while rotating), read again as they age (the Powertools cache's max age). */
  readonly signingKeys?: SigningKeys;
}

const runtimes = new Map<string, Promise<Runtime>>();

/**
 * The runtime of a handler, built on its first invocation (cold start): configuration parsed
 * and checked at once, backend opened, rules loaded and compiled, the HMAC key fetched. A failed
 * start is not cached, so the next invocation tries again (and logs the same clear error).
 */
export function runtime(
  handler: string,
  needs: ConfigNeeds,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<Runtime> {
  let started = runtimes.get(handler);
  if (started === undefined) {
    started = start(handler, needs, env);
    runtimes.set(handler, started);
    started.catch(() => runtimes.delete(handler));
  }
  return started;
}

/**
 * Forgets every runtime and the manifests this process keeps, as a new container would start
 * (tests, between configurations). Closes their backends.
 */
export async function resetRuntimes(): Promise<void> {
  const all = [...runtimes.values()];
  runtimes.clear();
  forgetVerifiedManifests();
  for (const started of all) {
    try {
      await (await started).backend.close();
    } catch {
      // It never started.
    }
  }
}

async function start(
  handler: string,
  needs: ConfigNeeds,
  env: Readonly<Record<string, string | undefined>>,
): Promise<Runtime> {
  const config = loadConfig(env, needs);
  const rules = needs.rules ? await loadRules(config) : [];
  const signingKeys =
    needs.cloudEvents && config.cloudEvents?.auth === "hmac"
      ? await SigningKeys.load(signingKeySource(config), {
          onError: (error) =>
            logger.error("could not read the CloudEvents signing keys again; the ones read before stay in use", {
              reason: (error as Error).message,
            }),
        })
      : undefined;
  const backend = await DynamoDbBackend.open(parseDynamoDbUrl(config.backendUrl));
  const agent = new Agent({
    // Lambda launches tasks elsewhere; it hosts no runners, so it has no runner command and no
    // limit on runs at once.
    launcher: new RemoteLauncher(),
    backend,
    labels: config.labels,
    environmentTypes: ["FargateTaskEnvironment"],
    submittedGraceMs: config.submittedGraceMs,
    // The stack's rule invokes the agent every minute: scheduled runs are created that far ahead.
    pollIntervalMs: 60_000,
    agentId: `lambda:${env.AWS_LAMBDA_FUNCTION_NAME ?? handler}:${randomUUID().slice(0, 8)}`,
    log: (line) => logger.info(line),
  });
  logger.info("tern handler started", { handler, labels: config.labels, rules: rules.map((r) => r.name) });
  return { config, backend, agent, rules, ...(signingKeys === undefined ? {} : { signingKeys }) };
}

export async function loadRules(config: LambdaConfig): Promise<TriggerRule[]> {
  const source = config.rules;
  if (source === undefined) return [];
  if ("inline" in source) return parseRules(source.inline, "TERN_TRIGGER_RULES");
  const { S3Client, GetObjectCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({});
  const where = `s3://${source.s3.bucket}/${source.s3.key}`;
  try {
    const output = await client.send(new GetObjectCommand({ Bucket: source.s3.bucket, Key: source.s3.key }));
    return parseRules(await (output.Body as { transformToString(): Promise<string> }).transformToString(), where);
  } catch (error) {
    if (isTernError(error, "RULES")) throw error;
    throw new RulesError(`Could not read the trigger rules at ${where}: ${(error as Error).message}`);
  } finally {
    client.destroy();
  }
}

/** A message on the launch queue: runs created by the CloudEvents handler, for the agent to launch. */
export interface LaunchMessage {
  readonly tern: "launch";
  readonly runIds: readonly string[];
}

/** The run ids of a launch-queue message body, or undefined when it is not one. */
export function parseLaunchMessage(body: string): string[] | undefined {
  try {
    const value = JSON.parse(body) as Partial<LaunchMessage>;
    if (value?.tern !== "launch" || !Array.isArray(value.runIds)) return undefined;
    return value.runIds.filter((id): id is string => typeof id === "string" && id !== "");
  } catch {
    return undefined;
  }
}

type Sqs = typeof import("@aws-sdk/client-sqs");
let sqs: Promise<{ client: InstanceType<Sqs["SQSClient"]>; SendMessageCommand: Sqs["SendMessageCommand"] }> | undefined;

/**
 * Hands the launch of `runIds` to the launch queue (`TERN_LAUNCH_QUEUE_URL`), which the agent
 * function consumes. Never throws: a run whose hand-off failed is Scheduled, and the agent's next
 * tick launches it.
 */
export async function handOffLaunches(rt: Runtime, runIds: readonly string[]): Promise<boolean> {
  const queueUrl = rt.config.launchQueueUrl;
  if (queueUrl === undefined || runIds.length === 0) return false;
  sqs ??= import("@aws-sdk/client-sqs").then(({ SQSClient, SendMessageCommand }) => ({
    client: new SQSClient({}),
    SendMessageCommand,
  }));
  const message: LaunchMessage = { tern: "launch", runIds: [...runIds] };
  try {
    const { client, SendMessageCommand } = await sqs;
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }));
    return true;
  } catch (error) {
    logger.warn("could not hand runs to the launch queue; the agent's next tick launches them", {
      runIds,
      reason: (error as Error).message,
    });
    return false;
  }
}
