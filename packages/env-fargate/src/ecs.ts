import type { ECSClient, ECSClientConfig, Tag, TaskDefinition } from "@aws-sdk/client-ecs";
import { EnvironmentError } from "@tern/core";
import { HASH_TAG, type TaskDefinitionInput, tagList } from "./definition.js";

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

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Exponential backoff with full jitter: a random wait up to `base * 2^(attempt-1)`, capped. */
export function backoffMs(attempt: number, baseMs: number, capMs = 20_000): number {
  return Math.round(Math.random() * Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1)));
}

/**
 * Spaces calls of one kind in this process to at most `perSecond` (RunTask: ECS allows about 20
 * per second per account and Region). Each caller reserves the next free slot synchronously,
 * so concurrent launches queue instead of bursting.
 */
export class Pacer {
  #next = 0;
  readonly intervalMs: number;

  constructor(perSecond: number) {
    this.intervalMs = 1000 / perSecond;
  }

  /** Resolves when the caller may make its call. */
  async wait(now = Date.now()): Promise<void> {
    const at = Math.max(now, this.#next);
    this.#next = at + this.intervalMs;
    if (at > now) await sleep(at - now);
  }
}

/** The pacer every FargateTaskEnvironment in this process shares for RunTask. */
export const runTaskPacer = new Pacer(20);

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
export async function ensureTaskDefinition(
  client: ECSClient,
  definition: TaskDefinitionInput,
  tags: Readonly<Record<string, string>>,
  hash: string,
): Promise<{ arn: string; registered: boolean }> {
  const sdk = await ecsSdk();
  for (let attempt = 1; ; attempt++) {
    const found = await findRevision(client, sdk, definition, hash);
    if (found !== undefined) return { arn: found, registered: false };
    try {
      const output = await client.send(
        new sdk.RegisterTaskDefinitionCommand({
          ...(definition as unknown as ConstructorParameters<typeof sdk.RegisterTaskDefinitionCommand>[0]),
          tags: [...tagList(tags), { key: HASH_TAG, value: hash }],
        }),
      );
      const arn = output.taskDefinition?.taskDefinitionArn;
      if (arn === undefined)
        throw new EnvironmentError(`ECS registered family ${definition.family} but returned no ARN.`);
      return { arn, registered: true };
    } catch (error) {
      if (!CONCURRENT_REGISTER.test((error as Error).message ?? "") || attempt >= REGISTER_ATTEMPTS) {
        throw new EnvironmentError(
          `FargateTaskEnvironment: registering task definition family ${definition.family} failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
      await sleep(250 + backoffMs(attempt, 500, 8_000));
    }
  }
}

async function findRevision(
  client: ECSClient,
  sdk: EcsSdk,
  definition: TaskDefinitionInput,
  hash: string,
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
      {
        cause: error,
      },
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
