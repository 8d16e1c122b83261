import * as z from "zod/mini";
import { AWS_ID_PATTERNS, parseRunnerBundle, SHA256, TAG_CHARACTERS } from "./aws-ids.js";

/**
 * The variables the agent's process configures launches with: `TERN_ECS_*`, `TERN_RUNNER_*` and
 * `TERN_LOG_GROUP`, as the CDK stack sets them on every launching function. One schema reads them
 * for the Fargate environment (defaults and guardrails) and for the Lambda configuration (which
 * checks them all at cold start), so both take the same values.
 */

/** Where the agent's process supplies defaults of the options (the CDK stack sets these on the agent). */
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

/** A comma-separated list: entries trimmed, empty ones dropped. */
export function splitList(value: string): string[] {
  return value
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

const string = (pattern: RegExp, message: string) => z.string().check(z.regex(pattern, message));

const list = (pattern: RegExp, message: string) =>
  z.pipe(
    z.string().check(z.refine((v) => splitList(v).every((s) => pattern.test(s)), message)),
    z.transform(splitList),
  );

const isRoleMap = (value: unknown): value is Record<string, string> =>
  typeof value === "object" &&
  value !== null &&
  !Array.isArray(value) &&
  Object.values(value).every((arn) => typeof arn === "string" && AWS_ID_PATTERNS.roleArn.test(arn));

const roleMap = z.pipe(
  z.string(),
  z.transform((text, payload): Record<string, string> => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      payload.issues.push({
        code: "custom",
        input: text,
        message: `is not JSON (${(error as Error).message}); the stack sets it to { "<project>": "<role ARN>" }`,
      });
      return {};
    }
    if (!isRoleMap(parsed)) {
      payload.issues.push({
        code: "custom",
        input: text,
        message:
          'must be JSON mapping project names to task role ARNs, e.g. {"billing": "arn:aws:iam::123456789012:role/x"}',
      });
      return {};
    }
    return parsed;
  }),
);

/**
 * The schema of the variables, each one a trimmed, non-empty string (see {@link readEcsEnv});
 * lists come out split, the project roles parsed. Each issue's message says what the variable
 * must be ("must be an IAM role ARN"), for the caller to put after the variable's name.
 */
export const ECS_ENV_SCHEMA = z.object({
  TERN_ECS_CLUSTER: z.optional(string(AWS_ID_PATTERNS.cluster, "must be a cluster name or ARN")),
  TERN_ECS_SUBNETS: z.optional(
    list(AWS_ID_PATTERNS.subnet, "must be a comma-separated list of ids such as subnet-0123456789abcdef0"),
  ),
  TERN_ECS_SECURITY_GROUPS: z.optional(
    list(AWS_ID_PATTERNS.securityGroup, "must be a comma-separated list of ids such as sg-0123456789abcdef0"),
  ),
  TERN_ECS_TASK_ROLE_ARN: z.optional(string(AWS_ID_PATTERNS.roleArn, "must be an IAM role ARN")),
  TERN_ECS_EXECUTION_ROLE_ARN: z.optional(string(AWS_ID_PATTERNS.roleArn, "must be an IAM role ARN")),
  TERN_RUNNER_IMAGE: z.optional(string(AWS_ID_PATTERNS.image, "must be an image URI")),
  TERN_RUNNER_BUNDLE: z.optional(
    z
      .string()
      .check(
        z.refine(
          (v) => parseRunnerBundle(v) !== undefined,
          "must be s3://<bucket>/<key>, the runner bundle object the stack deploys",
        ),
      ),
  ),
  TERN_RUNNER_BUNDLE_SHA256: z.optional(string(SHA256, "must be the runner bundle's sha256 (64 hex digits)")),
  TERN_LOG_GROUP: z.optional(string(AWS_ID_PATTERNS.logGroup, "must be a CloudWatch Logs group name")),
  // The stack's guardrails (FargateTaskEnvironment enforces them at every launch).
  TERN_ECS_ENFORCE_NETWORK: z.optional(z.enum(["true", "false"], 'must be "true" or "false"')),
  TERN_RUNNER_IMAGE_ARCHITECTURES: z.optional(list(/^(X86_64|ARM64)$/, "must be X86_64, ARM64 or X86_64,ARM64")),
  TERN_ECS_FAMILY_PREFIX: z.optional(
    string(/^[A-Za-z0-9_-]{1,200}$/, "must be a task definition family prefix such as tern-"),
  ),
  TERN_ECS_STACK_TAG: z.optional(
    z
      .string()
      .check(z.refine((v) => v.length <= 256 && TAG_CHARACTERS.test(v), "must be a tag value (the stack's name)")),
  ),
  TERN_ECS_PROJECT_TASK_ROLES: z.optional(roleMap),
});

/** The variables, read: each one present is valid. */
export type EcsEnv = z.output<typeof ECS_ENV_SCHEMA>;
/** The name of a variable of the schema. */
export type EcsVariable = keyof EcsEnv;

/** A variable the schema refuses: its name, what it must be, and the value it has. */
export interface EcsEnvProblem {
  readonly name: EcsVariable;
  readonly message: string;
  readonly value: string;
}

/** The variables set in `env`, trimmed; unset and empty ones left out. */
export function presentVariables(
  names: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const present: Record<string, string> = {};
  for (const name of names) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== "") present[name] = value;
  }
  return present;
}

/**
 * Reads the variables of `env` through the schema, each on its own: the valid ones come back as
 * values, the others as problems (the first one of each variable).
 */
export function readEcsEnv(env: Readonly<Record<string, string | undefined>>): {
  readonly values: EcsEnv;
  readonly problems: readonly EcsEnvProblem[];
} {
  const shape = ECS_ENV_SCHEMA.shape;
  const present = presentVariables(Object.keys(shape), env);
  const values: Record<string, unknown> = {};
  const problems: EcsEnvProblem[] = [];
  for (const [name, value] of Object.entries(present)) {
    const parsed = z.safeParse(shape[name as EcsVariable], value);
    if (parsed.success) values[name] = parsed.data;
    else problems.push({ name: name as EcsVariable, message: parsed.error.issues[0]?.message ?? "", value });
  }
  return { values: values as EcsEnv, problems };
}
