import type { ECSClient, ECSClientConfig, Tag, TaskDefinition } from "@aws-sdk/client-ecs";
import { EnvironmentError } from "@tern/core/plugin";
import { HASH_TAG, type TaskDefinitionInput, tagList } from "./definition.js";
import { backoffMs, sleep } from "./pacing.js";

type EcsSdk = typeof import("@aws-sdk/client-ecs");

let sdkPromise: Promise<EcsSdk> | undefined;

/**
 * The ECS SDK, imported on first use: a flow bundle that names a FargateTaskEnvironment never
 * loads it (bundles leave this import out), and agents that launch nothing on ECS skip it too.
 */
export function ecsSdk(): Promise<EcsSdk> {
  sdkPromise ??= import("@aws-sdk/client-ecs");
  return sdkPromise;
}

/** Makes the ECS client of a region. */
export type EcsClientFactory = (region: string) => ECSClient | Promise<ECSClient>;

const clients = new Map<string, Promise<ECSClient>>();
let factory: EcsClientFactory | undefined;

/**
 * Replaces how ECS clients are made (credentials, retries, a proxy). The default is
 * `new ECSClient({ region })`, which honours `AWS_ENDPOINT_URL_ECS` and the usual credential
 * chain. Clears the clients made so far.
 */
export function setEcsClientFactory(make: EcsClientFactory | undefined): void {
  factory = make;
  clients.clear();
}

/** One client per region, per process. */
export function ecsClient(region: string): Promise<ECSClient> {
  let client = clients.get(region);
  if (client === undefined) {
    client = (async () => {
      if (factory !== undefined) return factory(region);
      const { ECSClient } = await ecsSdk();
      const config: ECSClientConfig = { region, maxAttempts: 5 };
      return new ECSClient(config);
    })();
    clients.set(region, client);
  }
  return client;
}

/** The error's service name (`ClientException`...), for errors from the SDK. */
export function errorName(error: unknown): string {
  return typeof error === "object" && error !== null && "name" in error
    ? String((error as { name: unknown }).name)
    : "";
}

/** What a failed launch attempt means for the run; decided in one place, {@link launchFailureKind}. */
export type LaunchFailureKind =
  /** The request may have started a task (timeout, 5xx, reset): retry with the same clientToken. */
  | "uncertain"
  /** ECS refused for now and started nothing (throttling, capacity, vCPU quota): back off and retry, or hand the run back. */
  | "transient"
  /** Retrying cannot help (a bad parameter, a missing role): the run fails with the reason. */
  | "permanent";

/** Answers of ECS that a later attempt may get past (RunTask `failures[].reason`s and error messages). */
const TRANSIENT_TEXT =
  /capacity|RESOURCE:|throttl|rate exceeded|request limit exceeded|limit on the number of vcpus|AGENT|timeout|unavailable|internal error|try again/i;

/** Request-rate refusals, whatever error carries them. */
const RATE_TEXT = /rate exceeded|request limit exceeded|RequestLimitExceeded/i;

/** Throttling and quotas, whatever error carries them. */
const LIMIT_TEXT = /rate exceeded|request limit exceeded|RequestLimitExceeded|limit on the number of vcpus/i;

const THROTTLING_NAMES = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "LimitExceededException",
]);

const UNCERTAIN_NAMES = new Set([
  "ServerException",
  "ServiceUnavailableException",
  "InternalFailure",
  "InternalServerError",
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
]);

/** Whether AWS refused the call for its request rate (not a quota or capacity): the pacer slows down. */
export function isRateLimited(error: unknown): boolean {
  const e = error as { name?: string; message?: string } | null;
  if (e === null || typeof e !== "object") return false;
  return THROTTLING_NAMES.has(e.name ?? "") || RATE_TEXT.test(e.message ?? "");
}

/**
 * Whether and how a launch attempt may be retried, from the error RunTask threw or the
 * `failures[]` reason it returned (a string). The one place that decides "retryable" for the
 * launch path.
 */
export function launchFailureKind(problem: unknown): LaunchFailureKind {
  if (typeof problem === "string") return TRANSIENT_TEXT.test(problem) ? "transient" : "permanent";
  const e = problem as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  if (e === null || typeof e !== "object") return "permanent";
  const name = e.name ?? "";
  if (THROTTLING_NAMES.has(name)) return "transient";
  if (UNCERTAIN_NAMES.has(name)) return "uncertain";
  if (["ECONNRESET", "ETIMEDOUT", "EPIPE", "ECONNREFUSED", "EAI_AGAIN"].includes(e.code ?? "")) return "uncertain";
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return "uncertain";
  if (e.$retryable !== undefined) return "uncertain";
  // Throttling or a quota in another error's words ("Request limit exceeded" from EC2 inside an
  // InvalidParameterException, "You've reached the limit on the number of vCPUs you can run
  // concurrently"), then the other transient wordings of a ClientException.
  if (LIMIT_TEXT.test(e.message ?? "")) return "transient";
  if (TRANSIENT_TEXT.test(e.message ?? "") && name !== "InvalidParameterException") return "transient";
  return "permanent";
}

/** Task definitions already resolved in this process: `<region>|<hash>` to ARN. */
const knownDefinitions = new Map<string, string>();

export function rememberDefinition(region: string, hash: string, arn: string): void {
  knownDefinitions.set(`${region}|${hash}`, arn);
}

export function knownDefinition(region: string, hash: string): string | undefined {
  return knownDefinitions.get(`${region}|${hash}`);
}

export function forgetDefinition(region: string, hash: string): void {
  knownDefinitions.delete(`${region}|${hash}`);
}

/** Clears what this process remembers about task definitions (tests, long-lived agents after a cleanup). */
export function clearDefinitionCache(): void {
  knownDefinitions.clear();
}

const CONCURRENT_REGISTER = /too many concurrent attempts/i;
const REGISTER_ATTEMPTS = 8;
/** How many ACTIVE revisions are listed (the newest and ten before it) when the newest does not match. */
const SEARCH_REVISIONS = 11;

function hasHash(tags: readonly Tag[] | undefined, hash: string): boolean {
  return (tags ?? []).some((t) => t.key === HASH_TAG && t.value === hash);
}

/**
 * Whether a revision carrying the hash tag really is the desired definition in what matters
 * (image, roles, command, size): a tag alone could be put on any revision by anyone allowed to
 * tag task definitions.
 */
function sameContent(found: TaskDefinition | undefined, desired: TaskDefinitionInput): boolean {
  if (found === undefined) return false;
  const container = found.containerDefinitions?.[0];
  const wanted = desired.containerDefinitions[0] as { image?: string; command?: string[]; name?: string } | undefined;
  return (
    found.containerDefinitions?.length === 1 &&
    container?.name === wanted?.name &&
    container?.image === wanted?.image &&
    JSON.stringify(container?.command ?? []) === JSON.stringify(wanted?.command ?? []) &&
    (found.taskRoleArn ?? undefined) === desired.taskRoleArn &&
    (found.executionRoleArn ?? undefined) === desired.executionRoleArn &&
    found.cpu === desired.cpu &&
    found.memory === desired.memory
  );
}

/**
 * The ARN of an ACTIVE revision of `definition.family` tagged with `hash`, registering one only
 * when none exists. Concurrent registrations that ECS refuses ("Too many concurrent attempts")
 * are retried with jittered backoff, looking for the revision again first (the other writer may
 * have registered the same content).
 */
export function ensureTaskDefinition(
  client: ECSClient,
  definition: TaskDefinitionInput,
  tags: Readonly<Record<string, string>>,
  hash: string,
): Promise<Ensured> {
  // One search-or-register per content at a time in this process: runs deployed together (a
  // burst of events, several agents in one process) wait for it instead of each describing and
  // registering (RegisterTaskDefinition is throttled at about one per second).
  const key = `${definition.family}|${hash}`;
  let pending = ensuring.get(key);
  if (pending === undefined) {
    const tagged = [...tagList(tags), { key: HASH_TAG, value: hash }];
    pending = ensureOnce(client, { definition, hash }, tagged).finally(() => ensuring.delete(key));
    ensuring.set(key, pending);
  }
  return pending;
}

/** A task definition's ARN, and whether this call registered it. */
type Ensured = { arn: string; registered: boolean };

const ensuring = new Map<string, Promise<Ensured>>();

/** A task definition as wanted and its content hash, which its revisions carry as a tag. */
export interface HashedDefinition {
  readonly definition: TaskDefinitionInput;
  readonly hash: string;
}

/** {@link ensureTaskDefinition}'s search and registration; `tags` include the hash tag. */
async function ensureOnce(client: ECSClient, wanted: HashedDefinition, tags: Tag[]): Promise<Ensured> {
  const { definition } = wanted;
  const sdk = await ecsSdk();
  for (let attempt = 1; ; attempt++) {
    const found = await findRevision(client, sdk, wanted);
    if (found !== undefined) return { arn: found, registered: false };
    try {
      const output = await client.send(
        new sdk.RegisterTaskDefinitionCommand({
          ...(definition as unknown as ConstructorParameters<typeof sdk.RegisterTaskDefinitionCommand>[0]),
          tags,
        }),
      );
      const arn = output.taskDefinition?.taskDefinitionArn;
      if (arn === undefined)
        throw new EnvironmentError(`ECS registered family ${definition.family} but returned no ARN.`);
      return { arn, registered: true };
    } catch (error) {
      // Another writer's registration ("Too many concurrent attempts") or ECS's throttling of
      // RegisterTaskDefinition (about one per second): look again, then retry.
      const retryable =
        CONCURRENT_REGISTER.test((error as Error).message ?? "") || launchFailureKind(error) !== "permanent";
      if (!retryable || attempt >= REGISTER_ATTEMPTS) {
        // Given up on a refusal for now (throttling, other writers): the same setup may pass later.
        throw new EnvironmentError(
          `FargateTaskEnvironment: registering task definition family ${definition.family} failed: ${(error as Error).message}`,
          { cause: error, retryable },
        );
      }
      await sleep(250 + backoffMs(attempt, 500, 8_000));
    }
  }
}

async function findRevision(
  client: ECSClient,
  sdk: EcsSdk,
  { definition, hash }: HashedDefinition,
): Promise<string | undefined> {
  const family = definition.family;
  let newest: { taskDefinition?: TaskDefinition; tags?: Tag[] };
  try {
    newest = await client.send(new sdk.DescribeTaskDefinitionCommand({ taskDefinition: family, include: ["TAGS"] }));
  } catch (error) {
    // A family with no ACTIVE revision yet.
    if (errorName(error) === "ClientException" && /unable to describe/i.test((error as Error).message))
      return undefined;
    throw new EnvironmentError(
      `FargateTaskEnvironment: describing task definition family ${family} failed: ${(error as Error).message}`,
      { cause: error, retryable: launchFailureKind(error) !== "permanent" },
    );
  }
  const newestArn = newest.taskDefinition?.taskDefinitionArn;
  if (
    newestArn !== undefined &&
    newest.taskDefinition?.status === "ACTIVE" &&
    hasHash(newest.tags, hash) &&
    sameContent(newest.taskDefinition, definition)
  ) {
    return newestArn;
  }
  // An older ACTIVE revision may hold this content (a flow switched back to an earlier definition).
  const listed = await client.send(
    new sdk.ListTaskDefinitionsCommand({
      familyPrefix: family,
      status: "ACTIVE",
      sort: "DESC",
      maxResults: SEARCH_REVISIONS,
    }),
  );
  for (const arn of listed.taskDefinitionArns ?? []) {
    if (arn === newestArn || !arn.includes(`:task-definition/${family}:`)) continue;
    const described = await client.send(
      new sdk.DescribeTaskDefinitionCommand({ taskDefinition: arn, include: ["TAGS"] }),
    );
    if (
      described.taskDefinition?.status === "ACTIVE" &&
      hasHash(described.tags, hash) &&
      sameContent(described.taskDefinition, definition)
    ) {
      return arn;
    }
  }
  return undefined;
}

/** The parts of a task-definition ARN. */
const TASK_DEFINITION_ARN = /^arn:aws[a-z-]*:ecs:([a-z0-9-]+):(\d{12}):task-definition\/([A-Za-z0-9_-]{1,255}):(\d+)$/;
const ACCOUNT_OF_ARN = /^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):/;

/** What an annotated task-definition ARN must match: the agent's own configuration. */
export interface ExpectedDefinition extends HashedDefinition {
  readonly region: string;
  /** The cluster (name or ARN) and roles of the configuration: the account is taken from the first ARN among them. */
  readonly cluster: string;
  readonly taskRoleArn?: string;
  readonly executionRoleArn?: string;
}

/**
 * Checks a task-definition ARN that a flow version's annotation names (anyone who can write the
 * state table can write one) before it is run: the same Region, the same account as the agent's
 * cluster (or roles; when none of them is an ARN the account cannot be known without STS and
 * only the rest is checked), the configuration's family, ACTIVE, its content-hash tag equal to
 * the configuration's hash and the same content. Resolves `undefined` when it passes, or why not.
 */
export async function annotatedDefinitionProblem(
  client: ECSClient,
  arn: string,
  expected: ExpectedDefinition,
): Promise<string | undefined> {
  const parts = TASK_DEFINITION_ARN.exec(arn);
  if (parts === null) return `"${arn}" is not a task-definition ARN`;
  const [, region, account, family] = parts;
  if (region !== expected.region) return `it is in Region ${region}, the agent launches in ${expected.region}`;
  const accountOf = [expected.cluster, expected.taskRoleArn, expected.executionRoleArn]
    .map((candidate) => (candidate === undefined ? undefined : ACCOUNT_OF_ARN.exec(candidate)?.[1]))
    .find((found) => found !== undefined);
  if (accountOf !== undefined && account !== accountOf) {
    return `it belongs to account ${account}, the agent's cluster to ${accountOf}`;
  }
  if (family !== expected.definition.family) {
    return `its family ${family} is not the configuration's ${expected.definition.family}`;
  }
  const sdk = await ecsSdk();
  let described: { taskDefinition?: TaskDefinition; tags?: Tag[] } | undefined;
  try {
    described = await client.send(new sdk.DescribeTaskDefinitionCommand({ taskDefinition: arn, include: ["TAGS"] }));
  } catch (error) {
    return `DescribeTaskDefinition failed (${(error as Error).message})`;
  }
  if (described?.taskDefinition?.status !== "ACTIVE") {
    return `it is ${described?.taskDefinition?.status ?? "not described"}`;
  }
  if (!hasHash(described.tags, expected.hash)) return `its ${HASH_TAG} tag is not the configuration's hash`;
  if (!sameContent(described.taskDefinition, expected.definition)) return "its content differs from the configuration";
  return undefined;
}
