import { AWS_ID_PATTERNS } from "@tern/env-fargate";
import { parseRules, type TriggerRuleInput } from "@tern/lambda";
import { en } from "zod/locales";
import * as z from "zod/mini";
import { DEFAULT_FLOW_IMAGE_MAX_COUNT, ECR_REPOSITORY_ARN } from "./flow-images.js";
import { type RunnerImage, type RunnerSource, type StockImageOptions, stockImageProblems } from "./runner-image.js";
import type { VpcSpec } from "./runtime.js";

// zod/mini carries no messages of its own ("Invalid input" for everything) until a locale is loaded.
z.config(en());

/** What the `TernStack` is built from: CDK context `tern` (JSON) or the file it names. */
export interface TernConfig {
  /**
   * The network: import an existing VPC (its private subnets run the tasks), or create one with
   * private subnets reaching AWS through NAT gateways or through VPC endpoints.
   * @default { create: { natGateways: 1 } }
   */
  readonly vpc?: VpcSpec;
  /**
   * The image runner tasks start from: `"stock"` (the official Node.js image from ECR Public,
   * through an ECR pull-through cache; no Docker anywhere), `{ stock: { tag, digest, repository,
   * cachePrefix, createCacheRule } }` (the same, otherwise), `{ uri }` (an image you publish),
   * `{ build: { directory, file, include } }` (a Docker build of your directory at deploy time) or
   * `"build"` (a Docker build of this repository's Dockerfile).
   * @default "stock"
   */
  readonly runnerImage?: RunnerImage;
  /**
   * How tasks get tern: `"bundle"` (the runner bundle shipped in this package, downloaded by the
   * task at start and checked against its sha256; the image needs only Node.js 22+ as `node`) or
   * `"image"` (the image's own `tern`).
   * @default "bundle" with the stock image, "image" with `{ uri }` and built images
   */
  readonly runner?: RunnerSource;
  /** Labels of the Lambda agent: it takes runs whose labels are a subset. @default [] */
  readonly agentLabels?: string[];
  /** Trigger rules: an EventBridge rule each, targeting the trigger handler. @default [] */
  readonly triggers?: TriggerRuleInput[];
  /** The CloudEvents endpoint (a function URL). @default none */
  readonly cloudEvents?: { readonly auth: "iam" | "hmac" };
  /** Secrets Manager secret ARNs flows may name in `secrets` (the execution role may read them). @default [] */
  readonly secrets?: string[];
  /**
   * Secrets Manager secret ARNs storages read at use (GitStorage's `auth.secretArn`): the task
   * roles and the handlers, which load flows, may read them. @default []
   */
  readonly storageSecrets?: string[];
  /** Retention of the runs' logs and the functions' logs. @default 30 */
  readonly logRetentionDays?: number;
  /** Server access logs of the flow bucket go to this bucket, if given. @default none */
  readonly accessLogsBucket?: string;
  /** @default true */
  readonly tableDeletionProtection?: boolean;
  /** Days noncurrent versions of flow objects are kept. @default 90 */
  readonly noncurrentVersionDays?: number;
  /** An email notified when a handler errs. @default none */
  readonly alarmEmail?: string;
  /**
   * Reserved concurrency of every handler, the agent included. None by default: new accounts
   * (quota 10) cannot reserve any, and overlapping agent ticks are safe (compare-and-swap claims).
   * @default none
   */
  readonly reservedConcurrency?: number;
  /** Managed policies added to the task role (what the flows' own code needs: their buckets, APIs). @default [] */
  readonly taskRoleManagedPolicyArns?: string[];
  /**
   * Per-project task roles: `{ "<project>": { "managedPolicyArns": [...] } }`. Each project named
   * gets a role of its own (reading only its project's flow versions, with its own managed
   * policies); the agent runs that project's flows with it and refuses any other role for them.
   * Projects not named run with the shared task role. @default {}
   */
  readonly projectTaskRoles?: Record<string, { readonly managedPolicyArns?: string[] }>;
  /**
   * Tagged flow images the flow-image repository keeps (the most recently pushed; older ones
   * expire), or `false` to keep them all. A version names its image by digest: a version whose
   * image expired cannot run again. @default 1000
   */
  readonly flowImageMaxCount?: number | false;
  /**
   * ECR repository ARNs of base images `DockerStorage` builds on, in this account's registry: CI
   * may pull from them (to read the base, and to mount its layers instead of uploading them).
   * Bases in other registries (ECR Public, Docker Hub) are read from those registries and need
   * nothing here. @default []
   */
  readonly flowImageBaseRepositories?: string[];
}

/** Project names a per-project task role can be made for (a role's construct id, an IAM condition value). */
const PROJECT = /^[A-Za-z0-9._-]{1,64}$/;
const MANAGED_POLICY_ARN = /^arn:aws[a-z-]*:iam::(\d{12}|aws):policy\/.+$/;

const RETENTIONS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/** A complete Secrets Manager secret ARN: IAM grants name secrets by their full ARN. */
const secretArn = z
  .string()
  .check(
    z.regex(
      /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/,
      "complete Secrets Manager secret ARNs (ending in the 6-character suffix)",
    ),
  );

const schema = z.strictObject({
  vpc: z.optional(
    z.union([
      z.strictObject({
        import: z.strictObject({
          vpcId: z.string().check(z.regex(/^vpc-[0-9a-f]{8,17}$/, "a VPC id such as vpc-0123456789abcdef0")),
          availabilityZones: z.array(z.string()).check(z.minLength(1)),
          privateSubnetIds: z
            .array(z.string().check(z.regex(AWS_ID_PATTERNS.subnet, "subnet ids such as subnet-0123456789abcdef0")))
            .check(z.minLength(1)),
        }),
      }),
      z.strictObject({
        create: z.strictObject({
          maxAzs: z.optional(z.int().check(z.minimum(1), z.maximum(6))),
          natGateways: z.optional(z.int().check(z.minimum(0), z.maximum(6))),
          endpoints: z.optional(z.boolean()),
        }),
      }),
    ]),
  ),
  runnerImage: z.optional(z.unknown().check(z.superRefine((value, ctx) => checkRunnerImage(value, ctx.issues)))),
  runner: z.optional(
    z.unknown().check(
      z.superRefine((value, ctx) => {
        if (value === "bundle" || value === "image") return;
        ctx.issues.push({
          code: "custom",
          input: value,
          message: `${JSON.stringify(value)} is neither "bundle" (tasks download the runner bundle; the image needs Node.js as node) nor "image" (the image runs its own tern)`,
        });
      }),
    ),
  ),
  agentLabels: z.optional(z.array(z.string().check(z.minLength(1)))),
  triggers: z.optional(z.array(z.record(z.string(), z.unknown()))),
  cloudEvents: z.optional(z.strictObject({ auth: z.enum(["iam", "hmac"]) })),
  secrets: z.optional(z.array(secretArn)),
  storageSecrets: z.optional(z.array(secretArn)),
  logRetentionDays: z.optional(
    z.int().check(z.refine((d) => RETENTIONS.includes(d), `one of ${RETENTIONS.join(", ")}`)),
  ),
  accessLogsBucket: z.optional(z.string().check(z.regex(/^[a-z0-9.-]{3,63}$/, "a bucket name"))),
  tableDeletionProtection: z.optional(z.boolean()),
  noncurrentVersionDays: z.optional(z.int().check(z.minimum(1))),
  alarmEmail: z.optional(z.email()),
  reservedConcurrency: z.optional(z.int().check(z.minimum(1), z.maximum(1000))),
  taskRoleManagedPolicyArns: z.optional(
    z.array(z.string().check(z.regex(/^arn:aws[a-z-]*:iam::(\d{12}|aws):policy\/.+$/, "IAM managed policy ARNs"))),
  ),
  projectTaskRoles: z.optional(
    z
      .record(
        z.string(),
        z.strictObject({
          managedPolicyArns: z.optional(
            z.array(z.string().check(z.regex(MANAGED_POLICY_ARN, "IAM managed policy ARNs"))),
          ),
        }),
      )
      .check(
        z.superRefine((roles, ctx) => {
          for (const project of Object.keys(roles)) {
            if (PROJECT.test(project)) continue;
            ctx.issues.push({
              code: "custom",
              input: project,
              path: [project],
              message: `${JSON.stringify(project)} is not a project name a role can be made for: use 1 to 64 letters, digits, '.', '_' and '-'`,
            });
          }
        }),
      ),
  ),
  flowImageMaxCount: z.optional(
    z.unknown().check(
      z.superRefine((value, ctx) => {
        if (value === false || (typeof value === "number" && Number.isInteger(value) && value >= 1)) return;
        ctx.issues.push({
          code: "custom",
          input: value,
          message: `${JSON.stringify(value)} is not a count of flow images: use a whole number of 1 or more (default ${DEFAULT_FLOW_IMAGE_MAX_COUNT}), or false to keep every tagged image`,
        });
      }),
    ),
  ),
  flowImageBaseRepositories: z.optional(
    z.array(
      z.unknown().check(
        z.superRefine((value, ctx) => {
          if (typeof value === "string" && ECR_REPOSITORY_ARN.test(value)) return;
          ctx.issues.push({
            code: "custom",
            input: value,
            message: `${JSON.stringify(value)} is not an ECR repository ARN (e.g. "arn:aws:ecr:eu-west-1:123456789012:repository/acme/node-base")`,
          });
        }),
      ),
    ),
  ),
});

const RUNNER_IMAGE_FORMS =
  '"stock" (the default), { "stock": { "tag", "digest", "repository", "cachePrefix", "createCacheRule" } }, { "uri": "<image URI>" }, { "build": { "directory", "file", "include" } } or "build"';

type Issue = { code: "custom"; message: string; input: unknown; path?: PropertyKey[] };

/** Checks `runnerImage`, naming the value and what it should be. */
function checkRunnerImage(value: unknown, issues: unknown[]): void {
  const problem = (message: string, path: PropertyKey[] = []) =>
    issues.push({ code: "custom", message, input: value, path } satisfies Issue);
  if (value === "stock" || value === "build") return;
  const keys = typeof value === "object" && value !== null && !Array.isArray(value) ? Object.keys(value) : [];
  const record = value as Record<string, unknown>;
  if (keys.length !== 1) {
    problem(`${JSON.stringify(value)} is not a runner image: use ${RUNNER_IMAGE_FORMS}`);
    return;
  }
  const form = keys[0] as string;
  const options = record[form];
  if (form === "uri") {
    if (typeof options !== "string" || !/^\S+$/.test(options)) {
      problem(
        `${JSON.stringify(options)} is not an image URI (e.g. "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1")`,
        ["uri"],
      );
    }
    return;
  }
  if (form !== "stock" && form !== "build") {
    problem(`"${form}" is not a runner image form: use ${RUNNER_IMAGE_FORMS}`);
    return;
  }
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    problem(`${JSON.stringify(options)} is not an object of ${form} options`, [form]);
    return;
  }
  const allowed =
    form === "stock"
      ? ["tag", "digest", "repository", "cachePrefix", "createCacheRule"]
      : ["directory", "file", "include"];
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) problem(`unknown option "${key}" (${form} takes ${allowed.join(", ")})`, [form, key]);
  }
  const fields = options as Record<string, unknown>;
  if (form === "stock") {
    for (const key of ["tag", "digest", "repository", "cachePrefix"]) {
      if (fields[key] !== undefined && typeof fields[key] !== "string") problem("must be a string", [form, key]);
    }
    if (fields.createCacheRule !== undefined && typeof fields.createCacheRule !== "boolean") {
      problem("must be true or false", [form, "createCacheRule"]);
    }
    for (const message of stockImageProblems(fields as StockImageOptions)) problem(message, [form]);
    return;
  }
  if (typeof fields.directory !== "string" || fields.directory.trim() === "") {
    problem("the Docker build context, a directory (relative to the CDK app's working directory)", [form, "directory"]);
  }
  if (fields.file !== undefined && (typeof fields.file !== "string" || fields.file.trim() === "")) {
    problem("the Dockerfile, relative to build.directory", [form, "file"]);
  }
  if (
    fields.include !== undefined &&
    !(Array.isArray(fields.include) && fields.include.every((p) => typeof p === "string" && p.trim() !== ""))
  ) {
    problem('paths inside build.directory, e.g. ["package.json", "dist"]', [form, "include"]);
  }
}

/** A configuration that cannot be deployed, with every problem named. */
export class TernConfigError extends Error {
  constructor(where: string, problems: readonly string[]) {
    super(`tern infra configuration (${where}):\n  - ${problems.join("\n  - ")}`);
    this.name = "TernConfigError";
  }
}

/** Checks a configuration (from context or a file); trigger rules are compiled as the handlers will. */
export function parseConfig(raw: unknown, where: string): TernConfig {
  const parsed = z.safeParse(schema, raw ?? {});
  if (!parsed.success) {
    throw new TernConfigError(
      where,
      parsed.error.issues.map((issue) => `${issue.path.join(".") || "(config)"}: ${issue.message}`),
    );
  }
  const config = parsed.data as TernConfig;
  if (config.triggers !== undefined) {
    try {
      parseRules(JSON.stringify(config.triggers), `${where} triggers`);
    } catch (error) {
      throw new TernConfigError(where, [(error as Error).message]);
    }
  }
  return config;
}
