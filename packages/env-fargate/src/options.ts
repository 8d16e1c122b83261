import { EnvironmentError, type EnvironmentOptions, type JsonValue } from "@tern/core";

/** A capacity provider of a Fargate cluster. */
export interface FargateCapacityProvider {
  readonly capacityProvider: "FARGATE" | "FARGATE_SPOT";
  /** Relative share of tasks. @default 1 */
  readonly weight?: number;
  /** Tasks placed on this provider before weights apply. @default 0 */
  readonly base?: number;
}

/** The awslogs log driver's settings (the default), or `"none"` for no log driver. */
export type FargateLogConfiguration =
  | {
      /** CloudWatch Logs group. @default `TERN_LOG_GROUP` */
      readonly group?: string;
      /** @default "tern" */
      readonly streamPrefix?: string;
    }
  | "none";

/** Options of {@link FargateTaskEnvironment}: all JSON, all checked when constructed. */
export interface FargateTaskEnvironmentOptions extends EnvironmentOptions {
  /** Task definition family. @default `tern-<flow name as a slug>` */
  readonly family?: string;
  /** Cluster name or ARN. @default `TERN_ECS_CLUSTER`, else "default" */
  readonly cluster?: string;
  /** @default `AWS_REGION`, else `AWS_DEFAULT_REGION` */
  readonly region?: string;
  /**
   * The runner image: a stock Node image (20 or later) when a runner bundle is configured, else an
   * image whose `tern` command runs the flow. @default `TERN_RUNNER_IMAGE`
   */
  readonly image?: string;
  /**
   * The runner bundle, `s3://<bucket>/<key>`: the task's bootstrap downloads it through a URL the
   * agent presigns at launch, checks it against `runnerBundleSha256` and runs it, so the image
   * needs only Node. `"none"` runs `tern execute` from the image instead, whatever the agent's
   * default. @default `TERN_RUNNER_BUNDLE`, else none
   */
  readonly runnerBundle?: string;
  /** The runner bundle's sha256 (64 hex digits); with `runnerBundle`. @default `TERN_RUNNER_BUNDLE_SHA256` */
  readonly runnerBundleSha256?: string;
  /** CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384. @default 512 */
  readonly cpu?: number;
  /** MiB, valid for the cpu given (Fargate's table). @default 1024 */
  readonly memory?: number;
  /** Subnet ids of the task's network interface. @default `TERN_ECS_SUBNETS` (comma-separated) */
  readonly subnets?: readonly string[];
  /** Security group ids; required one way or the other. @default `TERN_ECS_SECURITY_GROUPS` (comma-separated) */
  readonly securityGroups?: readonly string[];
  /** Gives the task a public IP (needed in public subnets without NAT). @default false */
  readonly assignPublicIp?: boolean;
  /** The role the flow's code runs as; required one way or the other. @default `TERN_ECS_TASK_ROLE_ARN` */
  readonly taskRoleArn?: string;
  /** The role ECS uses to pull the image, write logs and read secrets. @default `TERN_ECS_EXECUTION_ROLE_ARN` */
  readonly executionRoleArn?: string;
  /** @default "tern-runner" */
  readonly containerName?: string;
  /** Plain environment variables of the runner. Secrets go in `secrets`. */
  readonly environment?: Readonly<Record<string, string>>;
  /** Environment variables read by ECS from Secrets Manager or SSM Parameter Store ARNs. */
  readonly secrets?: Readonly<Record<string, string>>;
  /** @default awslogs to `TERN_LOG_GROUP` with stream prefix "tern" */
  readonly logConfiguration?: FargateLogConfiguration;
  /** @default "FARGATE" (unless capacityProviderStrategy is given) */
  readonly launchType?: "FARGATE";
  /** For example `[{ capacityProvider: "FARGATE_SPOT" }]`. Not with `launchType`. */
  readonly capacityProviderStrategy?: readonly FargateCapacityProvider[];
  /** @default "LATEST" */
  readonly platformVersion?: string;
  /** @default X86_64 */
  readonly runtimePlatform?: { readonly cpuArchitecture?: "X86_64" | "ARM64" };
  /** Task storage, 21 to 200 GiB. @default Fargate's 20 GiB */
  readonly ephemeralStorageGiB?: number;
  /** Tags of the task definition and of every task. */
  readonly tags?: Readonly<Record<string, string>>;
  /** Launches after a task failed to start for a transient reason (ENI timeout, capacity). @default 2 */
  readonly maxRelaunches?: number;
  /** RunTask attempts when ECS answers with a transient failure (capacity). @default 5 */
  readonly launchAttempts?: number;
  /** First wait between those attempts, doubled each time (with jitter, at most 20 s). @default 1000 */
  readonly launchBackoffMs?: number;
  /** Further `RegisterTaskDefinition` fields (volumes, pidMode...). Fields tern sets are refused. */
  readonly extraTaskDefinition?: Readonly<Record<string, JsonValue>>;
  /** Further fields of the runner's container definition (ulimits, user, dockerLabels...). */
  readonly extraContainerDefinition?: Readonly<Record<string, JsonValue>>;
  /** Further `RunTask` fields (enableExecuteCommand, group, propagateTags...). */
  readonly extraRunTask?: Readonly<Record<string, JsonValue>>;
}

/** Variables tern sets in the runner's container itself (per run, or from the runner bundle). */
const RESERVED_VARIABLES: readonly string[] = ["TERN_RUN_ID", "TERN_BACKEND", "TERN_RUNNER_URL", "TERN_RUNNER_SHA256"];

/** The shape of a runner bundle location: `s3://<bucket>/<key>` (S3's bucket naming rules). */
export const RUNNER_BUNDLE_PATTERN = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(\S{1,1024})$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;

/** A runner bundle location split into its bucket and key, or undefined when it is not one. */
export function parseRunnerBundle(url: string): { readonly bucket: string; readonly key: string } | undefined {
  const match = RUNNER_BUNDLE_PATTERN.exec(url);
  if (match === null || (match[1] as string).includes("..")) return undefined;
  return { bucket: match[1] as string, key: match[2] as string };
}

/** Checks runnerBundle and runnerBundleSha256 (given together, or runnerBundle "none" alone). */
function validateRunnerBundle(o: Record<string, unknown>, out: Record<string, unknown>): void {
  const bundle = o.runnerBundle;
  const sha256 = o.runnerBundleSha256;
  if (bundle === undefined && sha256 === undefined) return;
  if (
    bundle !== undefined &&
    (typeof bundle !== "string" || (bundle !== "none" && parseRunnerBundle(bundle) === undefined))
  ) {
    throw optionError(
      "runnerBundle",
      `${show(bundle)} is not a runner bundle location: give s3://<bucket>/<key> (the object the tern stack deploys, e.g. s3://my-assets-bucket/runner/abc123.mjs), or "none" to run tern execute from the image.`,
    );
  }
  if (sha256 !== undefined && (typeof sha256 !== "string" || !SHA256.test(sha256))) {
    throw optionError(
      "runnerBundleSha256",
      `${show(sha256)} is not a sha256: give the bundle's 64 hex digits (what bundleRunner returns, or sha256sum runner.mjs).`,
    );
  }
  if (bundle === "none") {
    if (sha256 !== undefined) throw optionError("runnerBundleSha256", 'remove it: runnerBundle is "none".');
    out.runnerBundle = "none";
    return;
  }
  if (bundle === undefined)
    throw optionError("runnerBundle", "missing: runnerBundleSha256 is given; give both or neither.");
  if (sha256 === undefined)
    throw optionError(
      "runnerBundleSha256",
      `missing: runnerBundle is ${show(bundle)}; give both or neither (the bootstrap refuses a bundle it cannot verify).`,
    );
  out.runnerBundle = bundle;
  out.runnerBundleSha256 = (sha256 as string).toLowerCase();
}

/** The escape hatches' allowed keys (documented ECS fields tern does not set itself). */
export const EXTRA_KEYS = {
  extraTaskDefinition: ["volumes", "pidMode", "ipcMode", "proxyConfiguration", "enableFaultInjection"],
  extraContainerDefinition: [
    "portMappings",
    "mountPoints",
    "volumesFrom",
    "ulimits",
    "healthCheck",
    "user",
    "workingDirectory",
    "readonlyRootFilesystem",
    "dockerLabels",
    "stopTimeout",
    "startTimeout",
    "systemControls",
    "repositoryCredentials",
    "dependsOn",
    "cpu",
    "memoryReservation",
    "versionConsistency",
  ],
  extraRunTask: ["enableExecuteCommand", "group", "propagateTags", "enableECSManagedTags", "volumeConfigurations"],
} as const;

/** Keys tern sets itself, with the option that controls each. */
const OWNED_KEYS: Record<keyof typeof EXTRA_KEYS, Record<string, string>> = {
  extraTaskDefinition: {
    family: "family",
    cpu: "cpu",
    memory: "memory",
    taskRoleArn: "taskRoleArn",
    executionRoleArn: "executionRoleArn",
    networkMode: "(always awsvpc on Fargate)",
    requiresCompatibilities: "(always FARGATE)",
    runtimePlatform: "runtimePlatform",
    ephemeralStorage: "ephemeralStorageGiB",
    containerDefinitions: "extraContainerDefinition",
    tags: "tags",
  },
  extraContainerDefinition: {
    name: "containerName",
    image: "image",
    command: "(the runner's command; see runnerBundle)",
    environment: "environment",
    secrets: "secrets",
    logConfiguration: "logConfiguration",
    essential: "(always true)",
    linuxParameters: "(tern enables an init process)",
  },
  extraRunTask: {
    cluster: "cluster",
    taskDefinition: "(registered by content)",
    count: "(one task per run)",
    launchType: "launchType",
    capacityProviderStrategy: "capacityProviderStrategy",
    platformVersion: "platformVersion",
    networkConfiguration: "subnets, securityGroups and assignPublicIp",
    overrides: "(the run id and backend only)",
    clientToken: "(derived from the run id)",
    startedBy: "(the run id)",
    tags: "tags",
  },
};

/** Fargate's valid task sizes: memory (MiB) values per cpu value. */
export const FARGATE_SIZES: ReadonlyMap<number, readonly number[]> = new Map([
  [256, [512, 1024, 2048]],
  [512, [1024, 2048, 3072, 4096]],
  [1024, range(2048, 8192, 1024)],
  [2048, range(4096, 16384, 1024)],
  [4096, range(8192, 30720, 1024)],
  [8192, range(16384, 61440, 4096)],
  [16384, range(32768, 122880, 8192)],
]);

function range(from: number, to: number, step: number): number[] {
  const values: number[] = [];
  for (let v = from; v <= to; v += step) values.push(v);
  return values;
}

const WHERE = "FargateTaskEnvironment";

export function optionError(option: string, message: string): EnvironmentError {
  return new EnvironmentError(`${WHERE}: ${option}: ${message}`);
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The shapes of the AWS ids the options take (the Lambda and infra configurations check with them too). */
export const AWS_ID_PATTERNS = {
  subnet: /^subnet-[0-9a-f]{8}([0-9a-f]{9})?$/,
  securityGroup: /^sg-[0-9a-f]{8}([0-9a-f]{9})?$/,
  roleArn: /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/,
} as const;
const SUBNET = AWS_ID_PATTERNS.subnet;
const SECURITY_GROUP = AWS_ID_PATTERNS.securityGroup;
const ROLE_ARN = AWS_ID_PATTERNS.roleArn;
const SECRET_ARN = /^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:\d{12}:secret:.+|ssm:[a-z0-9-]+:\d{12}:parameter\/.+)$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const FAMILY = /^[A-Za-z0-9_-]{1,255}$/;
const CONTAINER_NAME = /^[A-Za-z0-9_-]{1,255}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** What ECS allows in tag keys and values. */
export const TAG_CHARACTERS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const CLUSTER = /^([A-Za-z0-9_-]{1,255}|arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/[A-Za-z0-9_-]{1,255})$/;

/** Names that are credentials whatever their value (matched as `_`-separated segments). */
const SECRET_NAMES =
  /(^|_)(SECRETS?|PASSWORDS?|PASSWD|PASS|PWD|(PRIVATE|API|ACCESS|SECRET|SIGNING|ENCRYPTION|MASTER|AUTH|CLIENT)_?KEY|APIKEY|SESSION_TOKEN|AUTH_TOKEN|TOKEN|CREDENTIALS?)(_|$)/i;
/** An AWS access key id. */
const ACCESS_KEY_ID = /\b(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/;
/** The shape of an AWS secret access key: 40 base64 characters, mixed case and digits. */
const SECRET_ACCESS_KEY = /(^|[^A-Za-z0-9/+=])[A-Za-z0-9/+]{40}($|[^A-Za-z0-9/+=])/;
/** Well-known token formats and private keys. */
const KNOWN_TOKENS: ReadonlyArray<readonly [RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key"],
  [/\b(sk|rk)_(live|test)_[A-Za-z0-9]{10,}/, "a Stripe key"],
  [/\bgh[pousr]_[A-Za-z0-9]{30,}/, "a GitHub token"],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/, "a Slack token"],
  [/hooks\.slack\.com\/services\//, "a Slack webhook URL"],
  [/\bAIza[0-9A-Za-z_-]{35}\b/, "a Google API key"],
  [/\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./, "a JSON Web Token"],
];

/** Why a string looks like a credential, whatever its name, or undefined. */
export function secretLookingValue(value: string): string | undefined {
  if (ACCESS_KEY_ID.test(value)) return "it contains an AWS access key id";
  for (const [pattern, what] of KNOWN_TOKENS) if (pattern.test(value)) return `it looks like ${what}`;
  // A URL with a password in it: scheme://user:password@host
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i.test(value)) return "it is a URL with a password in it";
  const match = SECRET_ACCESS_KEY.exec(value);
  if (match !== null) {
    const candidate = match[0].replace(/^[^A-Za-z0-9/+]|[^A-Za-z0-9/+]$/g, "");
    if (/[a-z]/.test(candidate) && /[A-Z]/.test(candidate) && /\d/.test(candidate)) {
      return "it looks like an AWS secret access key";
    }
  }
  return undefined;
}

/** Why an environment variable looks like a credential, or undefined. */
export function secretLooking(name: string, value: string): string | undefined {
  if (SECRET_NAMES.test(name) && value !== "") return `its name ${JSON.stringify(name)} says it holds a credential`;
  const why = secretLookingValue(value);
  return why === undefined ? undefined : `its value: ${why}`;
}

/** The first string inside a JSON value that looks like a credential, with its path. */
function findSecretLooking(value: unknown, path: string): { path: string; why: string } | undefined {
  if (typeof value === "string") {
    const why = secretLookingValue(value);
    return why === undefined ? undefined : { path, why };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findSecretLooking(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
  } else if (typeof value === "object" && value !== null) {
    for (const [key, inner] of Object.entries(value)) {
      const found = findSecretLooking(inner, `${path}.${key}`);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringList(option: string, value: unknown, pattern: RegExp, example: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw optionError(option, `expected a list of ids such as ["${example}"], got ${show(value)}.`);
  }
  for (const id of value as string[]) {
    if (!pattern.test(id)) throw optionError(option, `${show(id)} is not an id such as "${example}".`);
  }
  return [...new Set(value as string[])];
}

function stringMap(option: string, value: unknown): Record<string, string> {
  if (!isPlainObject(value)) throw optionError(option, `expected an object of strings, got ${show(value)}.`);
  for (const [name, v] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) {
      throw optionError(
        option,
        `${show(name)} is not a valid variable name (letters, digits and _, not starting with a digit).`,
      );
    }
    if (typeof v !== "string") {
      throw optionError(
        `${option}.${name}`,
        `expected a string, got ${show(v)}. Convert it with String(...) or JSON.stringify(...).`,
      );
    }
  }
  return { ...(value as Record<string, string>) };
}

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw optionError(option, `expected an integer from ${min} to ${max}, got ${show(value)}.`);
  }
  return value;
}

function nonEmptyString(option: string, value: unknown, pattern?: RegExp, hint?: string): string {
  if (typeof value !== "string" || value.trim() === "" || (pattern !== undefined && !pattern.test(value))) {
    throw optionError(option, `${show(value)} is not valid${hint === undefined ? "" : `: ${hint}`}.`);
  }
  return value;
}

/** ECS fields that are no user's to set, with why. */
const REFUSED_KEYS: Partial<Record<keyof typeof EXTRA_KEYS, Record<string, string>>> = {
  extraRunTask: {
    referenceId:
      "is not a user option: ECS documents RunTask's referenceId for its own use (volume configurations), not for callers; remove it",
  },
};

function extras(option: keyof typeof EXTRA_KEYS, value: unknown): Record<string, JsonValue> {
  if (!isPlainObject(value)) throw optionError(option, `expected an object of ECS fields, got ${show(value)}.`);
  const allowed: readonly string[] = EXTRA_KEYS[option];
  for (const key of Object.keys(value)) {
    const refused = REFUSED_KEYS[option]?.[key];
    if (refused !== undefined) throw optionError(`${option}.${key}`, `${refused}.`);
    const owner = OWNED_KEYS[option][key];
    if (owner !== undefined) {
      throw optionError(
        option,
        owner.startsWith("(")
          ? `tern sets ${show(key)} itself ${owner}.`
          : `tern sets ${show(key)}: use the ${owner} option instead.`,
      );
    }
    if (!allowed.includes(key)) {
      throw optionError(
        option,
        `unknown key ${show(key)}. Allowed: ${allowed.join(", ")}. (Check the spelling: unknown keys are never dropped silently.)`,
      );
    }
  }
  let json: Record<string, JsonValue>;
  try {
    json = JSON.parse(JSON.stringify(value)) as Record<string, JsonValue>;
  } catch (error) {
    throw optionError(option, `must be JSON: ${(error as Error).message}`);
  }
  const secret = findSecretLooking(json, option);
  if (secret !== undefined) {
    throw optionError(
      secret.path,
      `${secret.why}. Options are stored in the task definition and the flow's manifest for anyone to read; keep credentials in Secrets Manager or SSM and pass them through secrets.`,
    );
  }
  return json;
}

/** An image reference that names an x86 architecture in its path or tag (`amd64/node`, `app:1-amd64`). */
const X86_ONLY_IMAGE = /(^|[/:@_.-])(amd64|x86_64|x86-64)([/:@_.-]|$)/i;

/**
 * ARM64 checks that need no registry: Fargate Spot runs no ARM64 task, and an image whose
 * reference names an x86 architecture has no arm64 variant. Whether a multi-architecture image
 * holds an arm64 variant is known only to its registry: ECS then fails the task with
 * CannotPullContainerError ("no matching manifest"), which the reconciler explains.
 */
function checkArchitecture(out: Record<string, unknown>): void {
  const platform = out.runtimePlatform as { cpuArchitecture?: string } | undefined;
  if (platform?.cpuArchitecture !== "ARM64") return;
  const strategy = out.capacityProviderStrategy as readonly FargateCapacityProvider[] | undefined;
  if (strategy?.some((p) => p.capacityProvider === "FARGATE_SPOT")) {
    throw optionError(
      "runtimePlatform",
      'ARM64 tasks cannot run on Fargate Spot (AWS runs no ARM64 task on FARGATE_SPOT): use capacityProviderStrategy [{ capacityProvider: "FARGATE" }] (or leave it out), or cpuArchitecture "X86_64" to keep Spot.',
    );
  }
  const image = out.image as string | undefined;
  if (image !== undefined && X86_ONLY_IMAGE.test(image)) {
    throw optionError(
      "runtimePlatform",
      `ARM64 with image ${show(image)}, whose reference names an x86 architecture: it has no arm64 variant. Use a multi-architecture or arm64 image, or cpuArchitecture "X86_64".`,
    );
  }
}

/**
 * The length ECS measures `RunTask`'s 8,192-character limit on: the JSON of the whole `overrides`
 * object (container overrides, and any task-level override with them), not only
 * `containerOverrides`.
 */
export function overridesLength(overrides: unknown): number {
  return JSON.stringify(overrides ?? {}).length;
}

const KNOWN_OPTIONS = new Set([
  "labels",
  "onStart",
  "onExit",
  "dependencies",
  "family",
  "cluster",
  "region",
  "image",
  "runnerBundle",
  "runnerBundleSha256",
  "cpu",
  "memory",
  "subnets",
  "securityGroups",
  "assignPublicIp",
  "taskRoleArn",
  "executionRoleArn",
  "containerName",
  "environment",
  "secrets",
  "logConfiguration",
  "launchType",
  "capacityProviderStrategy",
  "platformVersion",
  "runtimePlatform",
  "ephemeralStorageGiB",
  "tags",
  "maxRelaunches",
  "launchAttempts",
  "launchBackoffMs",
  "extraTaskDefinition",
  "extraContainerDefinition",
  "extraRunTask",
]);

/** The JSON part of the options, validated. What goes into the manifest. */
export type FargateJsonOptions = Omit<FargateTaskEnvironmentOptions, "labels" | "onStart" | "onExit" | "dependencies">;

/**
 * Checks every option given (not the defaults the agent's environment will supply) and returns
 * the JSON ones. Throws an `EnvironmentError` naming the option and the fix.
 */
export function validateOptions(options: FargateTaskEnvironmentOptions): FargateJsonOptions {
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new EnvironmentError(
        `${WHERE}: unknown option ${show(key)}. Known options: ${[...KNOWN_OPTIONS].join(", ")}. For ECS fields tern does not set, use extraTaskDefinition, extraContainerDefinition or extraRunTask.`,
      );
    }
  }
  const o: Record<string, unknown> = { ...options };
  const out: Record<string, unknown> = {};
  if (o.family !== undefined)
    out.family = nonEmptyString("family", o.family, FAMILY, "use 1 to 255 letters, digits, hyphens and underscores");
  if (o.cluster !== undefined)
    out.cluster = nonEmptyString("cluster", o.cluster, CLUSTER, "give a cluster name or ARN");
  if (o.region !== undefined)
    out.region = nonEmptyString("region", o.region, REGION, 'give a region such as "eu-west-1"');
  if (o.image !== undefined)
    out.image = nonEmptyString(
      "image",
      o.image,
      /^\S{1,1024}$/,
      "give an image URI such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1.0",
    );
  validateRunnerBundle(o, out);
  const cpu = o.cpu ?? 512;
  const memory = o.memory ?? 1024;
  const memories = typeof cpu === "number" ? FARGATE_SIZES.get(cpu) : undefined;
  if (memories === undefined) {
    throw optionError(
      "cpu",
      `${show(cpu)} is not a Fargate size. Use one of ${[...FARGATE_SIZES.keys()].join(", ")} (CPU units; 1024 = 1 vCPU).`,
    );
  }
  if (typeof memory !== "number" || !memories.includes(memory)) {
    throw optionError(
      "memory",
      `${show(memory)} MiB is not valid with cpu ${cpu}${o.cpu === undefined ? " (the default cpu; set cpu to change it)" : ""}${o.memory === undefined ? " (1024 is the default memory)" : ""}. With cpu ${cpu}, memory must be one of: ${memories.join(", ")} (MiB).`,
    );
  }
  if (o.cpu !== undefined) out.cpu = cpu;
  if (o.memory !== undefined) out.memory = memory;
  if (o.subnets !== undefined) {
    const subnets = stringList("subnets", o.subnets, SUBNET, "subnet-0123456789abcdef0");
    if (subnets.length === 0) {
      throw optionError(
        "subnets",
        'no subnets given. Fargate tasks need at least one: pass subnets: ["subnet-..."] (private subnets with a NAT or VPC endpoints), or leave it out to use TERN_ECS_SUBNETS where the agent runs.',
      );
    }
    if (subnets.length > 16) throw optionError("subnets", `ECS takes at most 16 subnets, got ${subnets.length}.`);
    out.subnets = subnets;
  }
  if (o.securityGroups !== undefined) {
    const groups = stringList("securityGroups", o.securityGroups, SECURITY_GROUP, "sg-0123456789abcdef0");
    if (groups.length > 5)
      throw optionError("securityGroups", `ECS takes at most 5 security groups, got ${groups.length}.`);
    out.securityGroups = groups;
  }
  if (o.assignPublicIp !== undefined) {
    if (typeof o.assignPublicIp !== "boolean")
      throw optionError("assignPublicIp", `expected true or false, got ${show(o.assignPublicIp)}.`);
    out.assignPublicIp = o.assignPublicIp;
  }
  for (const role of ["taskRoleArn", "executionRoleArn"] as const) {
    if (o[role] !== undefined)
      out[role] = nonEmptyString(
        role,
        o[role],
        ROLE_ARN,
        "give an IAM role ARN such as arn:aws:iam::123456789012:role/tern-task",
      );
  }
  if (o.containerName !== undefined)
    out.containerName = nonEmptyString(
      "containerName",
      o.containerName,
      CONTAINER_NAME,
      "use letters, digits, hyphens and underscores",
    );
  if (o.environment !== undefined) {
    const environment = stringMap("environment", o.environment);
    for (const [name, value] of Object.entries(environment)) {
      if (RESERVED_VARIABLES.includes(name)) {
        throw optionError(`environment.${name}`, "tern sets this variable for each run; remove it.");
      }
      const why = secretLooking(name, value);
      if (why !== undefined) {
        throw optionError(
          `environment.${name}`,
          `${why}. Plain environment values are stored in the task definition and the flow's manifest for anyone to read. Put the value in Secrets Manager or SSM Parameter Store and pass secrets: { ${name}: "arn:aws:secretsmanager:<region>:<account>:secret:<name>" } instead.`,
        );
      }
    }
    out.environment = environment;
  }
  if (o.secrets !== undefined) {
    const secrets = stringMap("secrets", o.secrets);
    for (const [name, arn] of Object.entries(secrets)) {
      if (!SECRET_ARN.test(arn)) {
        throw optionError(
          `secrets.${name}`,
          `is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>) or an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>); its value is not shown, in case it is the secret itself. Pass the secret's ARN, never its value.`,
        );
      }
    }
    out.secrets = secrets;
  }
  const overlap = Object.keys((out.environment as object | undefined) ?? {}).filter(
    (n) => n in ((out.secrets as object | undefined) ?? {}),
  );
  if (overlap.length > 0)
    throw optionError("secrets", `${overlap.join(", ")} is also in environment; keep it in one of them.`);
  if (o.logConfiguration !== undefined) {
    const log = o.logConfiguration;
    if (log !== "none") {
      if (!isPlainObject(log))
        throw optionError("logConfiguration", `expected { group?, streamPrefix? } or "none", got ${show(log)}.`);
      for (const key of Object.keys(log)) {
        if (key !== "group" && key !== "streamPrefix") {
          throw optionError(
            "logConfiguration",
            `unknown key ${show(key)}; the keys are group and streamPrefix (awslogs), or pass "none".`,
          );
        }
      }
      if (log.group !== undefined)
        nonEmptyString("logConfiguration.group", log.group, /^[\w./#-]{1,512}$/, "give a CloudWatch Logs group name");
      if (log.streamPrefix !== undefined)
        nonEmptyString("logConfiguration.streamPrefix", log.streamPrefix, /^[^:*]{1,256}$/, "no ':' or '*'");
    }
    out.logConfiguration = log;
  }
  if (o.launchType !== undefined && o.capacityProviderStrategy !== undefined) {
    throw optionError("launchType", "give launchType or capacityProviderStrategy, not both (ECS refuses both).");
  }
  if (o.launchType !== undefined) {
    if (o.launchType !== "FARGATE") {
      throw optionError(
        "launchType",
        `${show(o.launchType)} is not supported: use "FARGATE", or capacityProviderStrategy: [{ capacityProvider: "FARGATE_SPOT" }] for Spot.`,
      );
    }
    out.launchType = o.launchType;
  }
  if (o.capacityProviderStrategy !== undefined) {
    const strategy = o.capacityProviderStrategy;
    if (!Array.isArray(strategy) || strategy.length === 0 || strategy.length > 6) {
      throw optionError(
        "capacityProviderStrategy",
        `expected 1 to 6 entries such as [{ capacityProvider: "FARGATE_SPOT", weight: 1 }], got ${show(strategy)}.`,
      );
    }
    out.capacityProviderStrategy = strategy.map((entry: unknown, i: number) => {
      const at = `capacityProviderStrategy[${i}]`;
      if (!isPlainObject(entry))
        throw optionError(at, `expected { capacityProvider, weight?, base? }, got ${show(entry)}.`);
      for (const key of Object.keys(entry)) {
        if (!["capacityProvider", "weight", "base"].includes(key))
          throw optionError(at, `unknown key ${show(key)}; the keys are capacityProvider, weight and base.`);
      }
      if (entry.capacityProvider !== "FARGATE" && entry.capacityProvider !== "FARGATE_SPOT") {
        throw optionError(
          `${at}.capacityProvider`,
          `${show(entry.capacityProvider)} is not "FARGATE" or "FARGATE_SPOT".`,
        );
      }
      if (entry.weight !== undefined) integer(`${at}.weight`, entry.weight, 0, 1000);
      if (entry.base !== undefined) integer(`${at}.base`, entry.base, 0, 100000);
      return { ...entry };
    });
  }
  if (o.platformVersion !== undefined) {
    out.platformVersion = nonEmptyString(
      "platformVersion",
      o.platformVersion,
      /^(LATEST|\d+\.\d+\.\d+)$/,
      'use "LATEST" or a version such as "1.4.0"',
    );
  }
  if (o.runtimePlatform !== undefined) {
    const platform = o.runtimePlatform;
    if (!isPlainObject(platform) || Object.keys(platform).some((k) => k !== "cpuArchitecture")) {
      throw optionError("runtimePlatform", `expected { cpuArchitecture: "X86_64" | "ARM64" }, got ${show(platform)}.`);
    }
    if (
      platform.cpuArchitecture !== undefined &&
      platform.cpuArchitecture !== "X86_64" &&
      platform.cpuArchitecture !== "ARM64"
    ) {
      throw optionError(
        "runtimePlatform.cpuArchitecture",
        `${show(platform.cpuArchitecture)} is not "X86_64" or "ARM64".`,
      );
    }
    out.runtimePlatform = { ...platform };
  }
  if (o.ephemeralStorageGiB !== undefined)
    out.ephemeralStorageGiB = integer("ephemeralStorageGiB", o.ephemeralStorageGiB, 21, 200);
  if (o.tags !== undefined) {
    if (!isPlainObject(o.tags)) throw optionError("tags", `expected an object of strings, got ${show(o.tags)}.`);
    const tags = o.tags as Record<string, unknown>;
    if (Object.keys(tags).length > 40)
      throw optionError("tags", `at most 40 tags (tern adds its own, ECS keeps 50), got ${Object.keys(tags).length}.`);
    for (const [key, value] of Object.entries(tags)) {
      if (key.length === 0 || key.length > 128 || /^aws:/i.test(key) || /^tern:/.test(key)) {
        throw optionError(
          "tags",
          `tag key ${show(key)} must have 1 to 128 characters and not start with "aws:" or "tern:".`,
        );
      }
      if (typeof value !== "string" || value.length > 256)
        throw optionError(`tags.${key}`, `expected a string of at most 256 characters, got ${show(value)}.`);
      if (/^aws:/i.test(value)) {
        throw optionError(
          `tags.${key}`,
          `the value ${show(value)} starts with "aws:", which ECS reserves for AWS's own tags (keys and values alike); choose another value.`,
        );
      }
      for (const [what, text] of [
        ["key", key],
        ["value", value],
      ] as const) {
        if (!TAG_CHARACTERS.test(text)) {
          throw optionError(
            `tags.${key}`,
            `the tag ${what} ${show(text)} has characters ECS refuses; use letters, digits, spaces and _ . : / = + - @.`,
          );
        }
      }
    }
    out.tags = { ...tags };
  }
  checkArchitecture(out);
  if (o.maxRelaunches !== undefined) out.maxRelaunches = integer("maxRelaunches", o.maxRelaunches, 0, 10);
  if (o.launchAttempts !== undefined) out.launchAttempts = integer("launchAttempts", o.launchAttempts, 1, 20);
  if (o.launchBackoffMs !== undefined) out.launchBackoffMs = integer("launchBackoffMs", o.launchBackoffMs, 0, 60_000);
  for (const option of ["extraTaskDefinition", "extraContainerDefinition", "extraRunTask"] as const) {
    if (o[option] !== undefined) out[option] = extras(option, o[option]);
  }
  return out as FargateJsonOptions;
}

/** Where the agent's process supplies defaults (the CDK stack sets these on the agent). */
export const ENVIRONMENT_DEFAULTS = {
  cluster: "TERN_ECS_CLUSTER",
  subnets: "TERN_ECS_SUBNETS",
  securityGroups: "TERN_ECS_SECURITY_GROUPS",
  taskRoleArn: "TERN_ECS_TASK_ROLE_ARN",
  executionRoleArn: "TERN_ECS_EXECUTION_ROLE_ARN",
  image: "TERN_RUNNER_IMAGE",
  runnerBundle: "TERN_RUNNER_BUNDLE",
  runnerBundleSha256: "TERN_RUNNER_BUNDLE_SHA256",
  logGroup: "TERN_LOG_GROUP",
} as const;

/**
 * The stack's guardrails, as the CDK stack sets them on the launching functions: with them, a
 * manifest cannot step outside the stack's network, cluster, task roles or family prefix.
 */
export const GUARDRAIL_VARIABLES = {
  /** "true": subnets, security groups and cluster must be the stack's (TERN_ECS_*), no public IP. */
  enforceNetwork: "TERN_ECS_ENFORCE_NETWORK",
  /** Every task definition family must start with this (the IAM policy allows RunTask on it only). */
  familyPrefix: "TERN_ECS_FAMILY_PREFIX",
  /** The value of the `tern:stack` tag on every task definition and task (IAM requires it). */
  stackTag: "TERN_ECS_STACK_TAG",
  /** JSON `{ "<project>": "<task role ARN>" }`: per-project task roles (the stack's option). */
  projectTaskRoles: "TERN_ECS_PROJECT_TASK_ROLES",
  /** The CPU architectures `TERN_RUNNER_IMAGE` has, comma-separated, when the stack knows them. */
  imageArchitectures: "TERN_RUNNER_IMAGE_ARCHITECTURES",
} as const;

/** The tag naming the stack on everything tern registers and runs. */
export const STACK_TAG = "tern:stack";

/** What a launch must stay within (undefined fields: not enforced). */
export interface LaunchGuardrails {
  readonly cluster?: string;
  readonly subnets?: readonly string[];
  readonly securityGroups?: readonly string[];
  readonly noPublicIp?: boolean;
  readonly familyPrefix?: string;
  /** The task roles allowed: the project's own when it has one, else the stack's. */
  readonly taskRoleArns?: readonly string[];
  /** Where each setting comes from, for the error message. */
  readonly source?: string;
}

function projectTaskRoles(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const name = GUARDRAIL_VARIABLES.projectTaskRoles;
  const text = env[name]?.trim();
  if (text === undefined || text === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new EnvironmentError(
      `${WHERE}: ${name} is not JSON (${(error as Error).message}); the stack sets it to { "<project>": "<role ARN>" }.`,
    );
  }
  if (!isPlainObject(parsed) || Object.values(parsed).some((v) => typeof v !== "string" || !ROLE_ARN.test(v))) {
    throw new EnvironmentError(`${WHERE}: ${name} must map project names to IAM role ARNs, got ${show(parsed)}.`);
  }
  return parsed as Record<string, string>;
}

/**
 * The guardrails the agent's environment asks for (the CDK stack sets them on every launching
 * function), or undefined when it sets none (an agent outside the stack).
 */
export function guardrailsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  project?: string,
): LaunchGuardrails | undefined {
  const get = (name: string) => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const enforce = get(GUARDRAIL_VARIABLES.enforceNetwork);
  if (enforce !== undefined && enforce !== "true" && enforce !== "false") {
    throw new EnvironmentError(
      `${WHERE}: ${GUARDRAIL_VARIABLES.enforceNetwork} must be "true" or "false", got ${show(enforce)}.`,
    );
  }
  const prefix = get(GUARDRAIL_VARIABLES.familyPrefix);
  if (enforce !== "true" && prefix === undefined) return undefined;
  const guardrails: { -readonly [K in keyof LaunchGuardrails]: LaunchGuardrails[K] } = {};
  if (prefix !== undefined) guardrails.familyPrefix = prefix;
  if (enforce === "true") {
    const need = (name: string) => {
      const value = get(name);
      if (value === undefined) {
        throw new EnvironmentError(
          `${WHERE}: ${GUARDRAIL_VARIABLES.enforceNetwork} is "true" but ${name} is not set: the stack's network cannot be enforced without it (the CDK stack sets both).`,
        );
      }
      return value;
    };
    guardrails.cluster = need(ENVIRONMENT_DEFAULTS.cluster);
    guardrails.subnets = listFromEnv(ENVIRONMENT_DEFAULTS.subnets, need(ENVIRONMENT_DEFAULTS.subnets)) ?? [];
    guardrails.securityGroups =
      listFromEnv(ENVIRONMENT_DEFAULTS.securityGroups, need(ENVIRONMENT_DEFAULTS.securityGroups)) ?? [];
    guardrails.noPublicIp = true;
    const roles = projectTaskRoles(env);
    const stackRole = get(ENVIRONMENT_DEFAULTS.taskRoleArn);
    const projectRole = project === undefined ? undefined : roles[project];
    guardrails.taskRoleArns =
      projectRole !== undefined
        ? [projectRole]
        : project !== undefined
          ? stackRole === undefined
            ? []
            : [stackRole]
          : [...new Set([...(stackRole === undefined ? [] : [stackRole]), ...Object.values(roles)])];
  }
  return guardrails;
}

function clusterName(cluster: string): string {
  return cluster.slice(cluster.lastIndexOf("/") + 1);
}

/**
 * Checks a resolved configuration against the stack's guardrails: a pure function. Throws an
 * `EnvironmentError` naming the setting, what the flow asked for and what the stack allows.
 */
export function checkGuardrails(config: ResolvedFargateConfig, guardrails: LaunchGuardrails | undefined): void {
  if (guardrails === undefined) return;
  const refuse = (setting: string, asked: string, allowed: string, variable: string) =>
    new EnvironmentError(
      `${WHERE}: ${setting}: this flow asks for ${asked}, but the stack's guardrails allow only ${allowed} (${variable}, enforced for every launch). Remove ${setting} from the environment's options to use the stack's, or change the stack.`,
    );
  const { enforceNetwork } = GUARDRAIL_VARIABLES;
  if (guardrails.familyPrefix !== undefined && !config.family.startsWith(guardrails.familyPrefix)) {
    throw refuse(
      "family",
      show(config.family),
      `families starting with ${show(guardrails.familyPrefix)}`,
      GUARDRAIL_VARIABLES.familyPrefix,
    );
  }
  if (guardrails.cluster !== undefined && clusterName(config.cluster) !== clusterName(guardrails.cluster)) {
    throw refuse(
      "cluster",
      show(config.cluster),
      show(guardrails.cluster),
      `${ENVIRONMENT_DEFAULTS.cluster}, ${enforceNetwork}`,
    );
  }
  if (guardrails.subnets !== undefined) {
    const outside = config.subnets.filter((s) => !guardrails.subnets?.includes(s));
    if (outside.length > 0) {
      throw refuse(
        "subnets",
        outside.join(", "),
        guardrails.subnets.join(", "),
        `${ENVIRONMENT_DEFAULTS.subnets}, ${enforceNetwork}`,
      );
    }
  }
  if (guardrails.securityGroups !== undefined) {
    const outside = config.securityGroups.filter((g) => !guardrails.securityGroups?.includes(g));
    if (outside.length > 0) {
      throw refuse(
        "securityGroups",
        outside.join(", "),
        guardrails.securityGroups.join(", "),
        `${ENVIRONMENT_DEFAULTS.securityGroups}, ${enforceNetwork}`,
      );
    }
  }
  if (guardrails.noPublicIp === true && config.assignPublicIp) {
    throw refuse("assignPublicIp", "a public IP (true)", "tasks without a public IP (false)", enforceNetwork);
  }
  if (guardrails.taskRoleArns !== undefined && !guardrails.taskRoleArns.includes(config.taskRoleArn ?? "")) {
    throw refuse(
      "taskRoleArn",
      show(config.taskRoleArn ?? "no task role"),
      guardrails.taskRoleArns.length === 0 ? "no task role it knows" : guardrails.taskRoleArns.join(", "),
      `${ENVIRONMENT_DEFAULTS.taskRoleArn}, ${GUARDRAIL_VARIABLES.projectTaskRoles}, ${enforceNetwork}`,
    );
  }
}

/** Everything a launch needs, options and defaults resolved. */
export interface ResolvedFargateConfig {
  readonly family: string;
  readonly cluster: string;
  readonly region: string;
  readonly image: string;
  /** The runner bundle the bootstrap runs; undefined: the image's `tern execute`. */
  readonly runner?: { readonly bucket: string; readonly key: string; readonly sha256: string };
  readonly cpu: number;
  readonly memory: number;
  readonly subnets: readonly string[];
  readonly securityGroups: readonly string[];
  readonly assignPublicIp: boolean;
  readonly taskRoleArn?: string;
  readonly executionRoleArn?: string;
  readonly containerName: string;
  readonly environment: Readonly<Record<string, string>>;
  readonly secrets: Readonly<Record<string, string>>;
  /** undefined: no log driver. */
  readonly log?: { readonly group: string; readonly streamPrefix: string };
  readonly launchType?: "FARGATE";
  readonly capacityProviderStrategy?: readonly FargateCapacityProvider[];
  readonly platformVersion: string;
  readonly cpuArchitecture: "X86_64" | "ARM64";
  readonly ephemeralStorageGiB?: number;
  readonly tags: Readonly<Record<string, string>>;
  readonly maxRelaunches: number;
  readonly launchAttempts: number;
  readonly launchBackoffMs: number;
  readonly extraTaskDefinition: Readonly<Record<string, JsonValue>>;
  readonly extraContainerDefinition: Readonly<Record<string, JsonValue>>;
  readonly extraRunTask: Readonly<Record<string, JsonValue>>;
}

/** A flow name as a task definition family: `tern-<slug>`. */
export function defaultFamily(flow: string): string {
  const slug = flow
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return `tern-${slug === "" ? "flow" : slug}`.slice(0, 255);
}

function listFromEnv(name: string, value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  return value
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v !== "")
    .map((v) => {
      if (v === "") throw new EnvironmentError(`${WHERE}: ${name} has an empty entry.`);
      return v;
    });
}

/**
 * Fills the defaults from the agent's environment variables and checks that everything a launch
 * needs is there, naming the option and the variable for whatever is missing.
 */
export function resolveConfig(
  options: FargateJsonOptions,
  flow: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  context: { readonly project?: string } = {},
): ResolvedFargateConfig {
  const fromEnv = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  };
  // Values from the environment go through the same checks as options.
  const defaults: Record<string, unknown> = {};
  const subnets = listFromEnv(ENVIRONMENT_DEFAULTS.subnets, env[ENVIRONMENT_DEFAULTS.subnets]);
  const groups = listFromEnv(ENVIRONMENT_DEFAULTS.securityGroups, env[ENVIRONMENT_DEFAULTS.securityGroups]);
  if (options.subnets === undefined && subnets !== undefined) defaults.subnets = subnets;
  if (options.securityGroups === undefined && groups !== undefined) defaults.securityGroups = groups;
  // A project with its own task role (the stack's per-project option) runs with it by default.
  const projectRole = context.project === undefined ? undefined : projectTaskRoles(env)[context.project];
  if (options.taskRoleArn === undefined && projectRole !== undefined) defaults.taskRoleArn = projectRole;
  for (const key of ["cluster", "taskRoleArn", "executionRoleArn", "image"] as const) {
    if (key in defaults) continue;
    const value = fromEnv(ENVIRONMENT_DEFAULTS[key]);
    if (options[key] === undefined && value !== undefined) defaults[key] = value;
  }
  // The bundle and its sha256 come as a pair: from the options, or both from the environment.
  if (options.runnerBundle === undefined && options.runnerBundleSha256 === undefined) {
    const bundle = fromEnv(ENVIRONMENT_DEFAULTS.runnerBundle);
    const sha256 = fromEnv(ENVIRONMENT_DEFAULTS.runnerBundleSha256);
    if (bundle !== undefined || sha256 !== undefined) {
      if (bundle === undefined || sha256 === undefined) {
        const [set, unset] =
          bundle === undefined
            ? [ENVIRONMENT_DEFAULTS.runnerBundleSha256, ENVIRONMENT_DEFAULTS.runnerBundle]
            : [ENVIRONMENT_DEFAULTS.runnerBundle, ENVIRONMENT_DEFAULTS.runnerBundleSha256];
        throw new EnvironmentError(
          `${WHERE}: ${set} is set where the agent runs but ${unset} is not: set both (the CDK stack sets both), or neither to run tern execute from the image.`,
        );
      }
      defaults.runnerBundle = bundle;
      defaults.runnerBundleSha256 = sha256;
    }
  }
  const region = options.region ?? fromEnv("AWS_REGION") ?? fromEnv("AWS_DEFAULT_REGION");
  if (options.region === undefined && region !== undefined) defaults.region = region;
  let merged: FargateJsonOptions;
  try {
    merged = validateOptions({ ...options, ...defaults } as FargateTaskEnvironmentOptions);
  } catch (error) {
    const names = Object.keys(defaults)
      .map((k) => (k === "region" ? "AWS_REGION" : ENVIRONMENT_DEFAULTS[k as keyof typeof ENVIRONMENT_DEFAULTS]))
      .join(", ");
    throw new EnvironmentError(`${(error as Error).message}${names === "" ? "" : ` (defaults read from ${names})`}`, {
      cause: error,
    });
  }
  // The agent's image: its architectures are known when the stack built or chose it.
  const architectures = fromEnv(GUARDRAIL_VARIABLES.imageArchitectures)
    ?.split(",")
    .map((a) => a.trim());
  const architecture = merged.runtimePlatform?.cpuArchitecture ?? "X86_64";
  if (options.image === undefined && architectures !== undefined && !architectures.includes(architecture)) {
    throw optionError(
      "runtimePlatform",
      `${architecture}, but the agent's runner image ${show(merged.image)} (${ENVIRONMENT_DEFAULTS.image}) has ${architectures.join(" and ")} only (${GUARDRAIL_VARIABLES.imageArchitectures}): use cpuArchitecture ${show(architectures[0])}, or an image with a ${architecture} variant.`,
    );
  }
  const missing = (option: string, variable: string, why: string) =>
    new EnvironmentError(
      `${WHERE}: no ${option}: ${why}. Pass ${option} in the environment's options, or set ${variable} where the agent runs (the CDK stack sets it).`,
    );
  if (merged.image === undefined)
    throw missing(
      "image",
      ENVIRONMENT_DEFAULTS.image,
      "the runner image is a stock Node image (with a runner bundle) or one that holds the tern CLI",
    );
  if (merged.subnets === undefined)
    throw missing("subnets", ENVIRONMENT_DEFAULTS.subnets, "Fargate tasks need a subnet for their network interface");
  if (merged.region === undefined) throw missing("region", "AWS_REGION", "ECS calls and logs need a region");
  if (merged.securityGroups === undefined || merged.securityGroups.length === 0) {
    throw missing(
      "securityGroups",
      ENVIRONMENT_DEFAULTS.securityGroups,
      "tasks get explicit security groups, never the VPC's default",
    );
  }
  if (merged.taskRoleArn === undefined) {
    throw missing(
      "taskRoleArn",
      ENVIRONMENT_DEFAULTS.taskRoleArn,
      "the runner reads its run from the backend and its flow from storage with this role's credentials",
    );
  }
  const logOption = merged.logConfiguration;
  let log: ResolvedFargateConfig["log"];
  if (logOption !== "none") {
    const group = logOption?.group ?? fromEnv(ENVIRONMENT_DEFAULTS.logGroup);
    if (group === undefined) {
      throw new EnvironmentError(
        `${WHERE}: no log group for the runner's output: pass logConfiguration: { group: "/tern/runs" }, set ${ENVIRONMENT_DEFAULTS.logGroup} where the agent runs (the CDK stack sets it), or pass logConfiguration: "none".`,
      );
    }
    log = { group, streamPrefix: logOption?.streamPrefix ?? "tern" };
  }
  const needsExecutionRole =
    log !== undefined || Object.keys(merged.secrets ?? {}).length > 0 || /\.dkr\.ecr\./.test(merged.image);
  if (needsExecutionRole && merged.executionRoleArn === undefined) {
    throw missing(
      "executionRoleArn",
      ENVIRONMENT_DEFAULTS.executionRoleArn,
      "ECS needs it to pull an ECR image, write awslogs and read secrets",
    );
  }
  const stackTag = fromEnv(GUARDRAIL_VARIABLES.stackTag);
  const resolved: ResolvedFargateConfig = {
    family: merged.family ?? defaultFamily(flow),
    cluster: merged.cluster ?? "default",
    region: merged.region,
    image: merged.image,
    ...(merged.runnerBundle === undefined || merged.runnerBundle === "none"
      ? {}
      : {
          runner: {
            ...(parseRunnerBundle(merged.runnerBundle) as { bucket: string; key: string }),
            sha256: merged.runnerBundleSha256 as string,
          },
        }),
    cpu: merged.cpu ?? 512,
    memory: merged.memory ?? 1024,
    subnets: merged.subnets,
    securityGroups: merged.securityGroups,
    assignPublicIp: merged.assignPublicIp ?? false,
    ...(merged.taskRoleArn === undefined ? {} : { taskRoleArn: merged.taskRoleArn }),
    ...(merged.executionRoleArn === undefined ? {} : { executionRoleArn: merged.executionRoleArn }),
    containerName: merged.containerName ?? "tern-runner",
    environment: merged.environment ?? {},
    secrets: merged.secrets ?? {},
    ...(log === undefined ? {} : { log }),
    ...(merged.capacityProviderStrategy === undefined
      ? { launchType: "FARGATE" as const }
      : { capacityProviderStrategy: merged.capacityProviderStrategy }),
    platformVersion: merged.platformVersion ?? "LATEST",
    cpuArchitecture: merged.runtimePlatform?.cpuArchitecture ?? "X86_64",
    ...(merged.ephemeralStorageGiB === undefined ? {} : { ephemeralStorageGiB: merged.ephemeralStorageGiB }),
    // The stack's tag: IAM lets the agent register task definitions only with it.
    tags: { ...merged.tags, ...(stackTag === undefined ? {} : { [STACK_TAG]: tagValueOf(stackTag) }) },
    maxRelaunches: merged.maxRelaunches ?? 2,
    launchAttempts: merged.launchAttempts ?? 5,
    launchBackoffMs: merged.launchBackoffMs ?? 1000,
    extraTaskDefinition: merged.extraTaskDefinition ?? {},
    extraContainerDefinition: merged.extraContainerDefinition ?? {},
    extraRunTask: merged.extraRunTask ?? {},
  };
  checkGuardrails(resolved, guardrailsFromEnv(env, context.project));
  return resolved;
}

/** A value ECS accepts in a tag: characters it refuses become "_", at most 256 characters. */
function tagValueOf(value: string): string {
  return value.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, "_").slice(0, 256);
}
