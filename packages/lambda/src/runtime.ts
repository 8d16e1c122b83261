import { randomUUID } from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import { DynamoDbBackend, parseDynamoDbUrl } from "@tern/backend-dynamodb";
import { type Backend, LocalAgent, registerStorageLoader } from "@tern/core";
import "@tern/env-fargate";
import { type ConfigNeeds, type LambdaConfig, loadConfig } from "./config.js";
import { parseRules, RulesError, type TriggerRule } from "./rules.js";

// Flows in S3 are what a Lambda agent loads; the S3 driver is imported on first use.
registerStorageLoader("S3Storage", () => import("@tern/storage-cloud/s3"));
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/** Structured JSON logs (one object per line, with run ids), as CloudWatch Logs Insights reads them. */
export const logger = new Logger({ serviceName: "tern" });

/** What a handler keeps between invocations of one Lambda instance. */
export interface Runtime {
  readonly config: LambdaConfig;
  readonly backend: Backend;
  /** Deploys runs: claims, environments, the sweep. */
  readonly agent: LocalAgent;
  readonly rules: readonly TriggerRule[];
  /** The CloudEvents HMAC keys (current first, then the previous one while rotating), read once. */
  readonly hmacKeys?: readonly string[];
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

/** Forgets every runtime (tests, between configurations). Closes their backends. */
export async function resetRuntimes(): Promise<void> {
  const all = [...runtimes.values()];
  runtimes.clear();
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
  const hmacKeys = needs.cloudEvents ? await loadHmacKeys(config) : undefined;
  const backend = await DynamoDbBackend.open(parseDynamoDbUrl(config.backendUrl));
  const agent = new LocalAgent({
    backend,
    labels: config.labels,
    // Lambda launches tasks; it cannot host local runners.
    runnerCommand: ["tern"],
    environmentTypes: ["FargateTaskEnvironment"],
    concurrency: 10_000,
    submittedGraceMs: config.submittedGraceMs,
    agentId: `lambda:${env.AWS_LAMBDA_FUNCTION_NAME ?? handler}:${randomUUID().slice(0, 8)}`,
    log: (line) => logger.info(line),
  });
  logger.info("tern handler started", { handler, labels: config.labels, rules: rules.map((r) => r.name) });
  return { config, backend, agent, rules, ...(hmacKeys === undefined ? {} : { hmacKeys }) };
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
    if (error instanceof RulesError) throw error;
    throw new RulesError(`Could not read the trigger rules at ${where}: ${(error as Error).message}`);
  } finally {
    client.destroy();
  }
}

/**
 * The HMAC keys: the secret holds the key itself, or `{"current": "...", "previous": "..."}`
 * while a rotation is under way (requests signed with either are accepted).
 */
async function loadHmacKeys(config: LambdaConfig): Promise<string[] | undefined> {
  const ce = config.cloudEvents;
  if (ce === undefined || ce.auth !== "hmac") return undefined;
  let text = ce.secret;
  if (text === undefined) {
    const { SecretsManagerClient, GetSecretValueCommand } = await import("@aws-sdk/client-secrets-manager");
    const client = new SecretsManagerClient({});
    try {
      text = (await client.send(new GetSecretValueCommand({ SecretId: ce.secretArn }))).SecretString;
    } finally {
      client.destroy();
    }
  }
  let keys: string[] = text === undefined ? [] : [text];
  if (text?.trim().startsWith("{")) {
    const parsed = JSON.parse(text) as { current?: unknown; previous?: unknown };
    keys = [parsed.current, parsed.previous].filter((k): k is string => typeof k === "string");
  }
  if (keys.length === 0 || keys.some((k) => k.length < 32)) {
    throw new Error(
      `the CloudEvents signing secret ${ce.secretArn ?? "(TERN_CLOUDEVENTS_SECRET)"} must hold a key of at least 32 characters, or {"current": ..., "previous": ...} with such keys`,
    );
  }
  return keys;
}
