import { TernError } from "@tern/core";
import { AWS_ID_PATTERNS, ECS_ENV_SCHEMA, presentVariables } from "@tern/env-fargate";
import * as z from "zod/mini";
// The English locale alone: the locales index loads every language (about 60 modules).
import en from "zod/v4/locales/en.js";

// zod/mini carries no messages of its own ("Invalid input" for everything) until a locale is loaded.
z.config(en());

/** A configuration that cannot work: every missing or invalid variable, named. */
export class ConfigError extends TernError {
  constructor(readonly problems: readonly string[]) {
    super(
      "CONFIG",
      `tern Lambda configuration: ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n  - ${problems.join("\n  - ")}\nSet these environment variables on the function (the tern CDK stack sets them all).`,
    );
  }
}

/** What a handler needs from its environment. */
export interface LambdaConfig {
  /** `dynamodb://<table>?region=<region>` */
  readonly backendUrl: string;
  readonly labels: readonly string[];
  /** Stop claiming this long before the invocation's time runs out. */
  readonly safetyMarginMs: number;
  /** How long a run may stay Submitted with no task before the sweep acts. */
  readonly submittedGraceMs: number;
  /** Trigger rules inline (JSON), or where to read them (`s3://bucket/key`). */
  readonly rules?: { readonly inline: string } | { readonly s3: { readonly bucket: string; readonly key: string } };
  readonly cloudEvents?: {
    readonly auth: "iam" | "hmac";
    /** Secrets Manager secret holding the HMAC key (what the stack sets). */
    readonly secretArn?: string;
    /** The HMAC key itself (local use and tests). */
    readonly secret?: string;
    /** How far a signature's timestamp may be from now. */
    readonly toleranceSeconds: number;
  };
  /** The SQS queue the CloudEvents handler hands launches to (the agent function consumes it). */
  readonly launchQueueUrl?: string;
}

/** Which parts a handler needs: the ECS settings to launch runs, the rules, the CloudEvents auth. */
export interface ConfigNeeds {
  readonly ecs?: boolean;
  readonly rules?: boolean;
  readonly cloudEvents?: boolean;
}

const integer = (min: number, max: number) =>
  z
    .string()
    .check(
      z.refine(
        (v) => /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max,
        `must be an integer from ${min} to ${max}`,
      ),
    );

const schema = z.object({
  TERN_BACKEND: z.optional(
    z
      .string()
      .check(
        z.refine(
          (v) => v.startsWith("dynamodb://"),
          "must be a dynamodb://<table>?region=<region> URL (Lambda has no disk to keep SQLite on)",
        ),
      ),
  ),
  TERN_AGENT_LABELS: z.optional(z.string()),
  TERN_SAFETY_MARGIN_MS: z.optional(integer(0, 600_000)),
  TERN_SUBMITTED_GRACE_MS: z.optional(integer(1_000, 86_400_000)),
  // The ECS settings, the runner's and the stack's guardrails: the schema FargateTaskEnvironment reads them with.
  ...ECS_ENV_SCHEMA.shape,
  TERN_TRIGGER_RULES: z.optional(z.string()),
  TERN_TRIGGER_RULES_URL: z.optional(
    z.string().check(z.regex(/^s3:\/\/[a-z0-9.-]{3,63}\/.+$/, "must be s3://<bucket>/<key>")),
  ),
  TERN_CLOUDEVENTS_AUTH: z.optional(z.enum(["iam", "hmac"])),
  TERN_CLOUDEVENTS_SECRET_ARN: z.optional(
    z.string().check(z.regex(AWS_ID_PATTERNS.secretsManagerArn, "must be a Secrets Manager secret ARN")),
  ),
  TERN_CLOUDEVENTS_SECRET: z.optional(z.string().check(z.minLength(32, "must be at least 32 characters"))),
  TERN_SIGNATURE_TOLERANCE_S: z.optional(integer(1, 3600)),
  TERN_LAUNCH_QUEUE_URL: z.optional(z.string().check(z.regex(/^https?:\/\/\S+$/, "must be an SQS queue URL"))),
});

/**
 * Reads a handler's configuration from environment variables, once per cold start. Throws a
 * `ConfigError` naming every missing or invalid variable at once.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, needs: ConfigNeeds = {}): LambdaConfig {
  const present = presentVariables(Object.keys(schema.shape), env);
  const parsed = z.safeParse(schema, present);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? "");
      const shown =
        /SECRET|KEY|TOKEN|PASSWORD/.test(name) && !name.endsWith("_ARN")
          ? "(value hidden)"
          : JSON.stringify(present[name]);
      problems.push(`${name} ${issue.message}${name in present ? ` (got ${shown})` : ""}`);
    }
  }
  const value = (parsed.success ? parsed.data : {}) as z.infer<typeof schema>;
  const require = (name: keyof z.infer<typeof schema>, why: string) => {
    if (!(name in present)) problems.push(`${name} is missing: ${why}`);
  };
  require("TERN_BACKEND", "the state table, as dynamodb://<table>?region=<region>");
  if (needs.ecs) {
    require("TERN_ECS_CLUSTER", "the ECS cluster runs are launched on");
    require("TERN_ECS_SUBNETS", "the subnets of the runs' tasks");
    require("TERN_ECS_EXECUTION_ROLE_ARN", "the role ECS pulls the runner image and writes logs with");
    require("TERN_RUNNER_IMAGE", "the runner image");
    require("TERN_LOG_GROUP", "the log group of the runs' output");
    if (value.TERN_ECS_ENFORCE_NETWORK === "true") {
      const why = "TERN_ECS_ENFORCE_NETWORK is true, and the guardrails are the stack's own settings";
      require("TERN_ECS_SECURITY_GROUPS", `the security groups of the runs' tasks (${why})`);
      require("TERN_ECS_TASK_ROLE_ARN", `the runs' task role (${why})`);
    }
  }
  // The runner bundle and its sha256 come together (the task's bootstrap verifies one with the other).
  if ("TERN_RUNNER_BUNDLE" in present && !("TERN_RUNNER_BUNDLE_SHA256" in present)) {
    problems.push(
      "TERN_RUNNER_BUNDLE_SHA256 is missing: TERN_RUNNER_BUNDLE is set, and the bundle is run only if its sha256 matches",
    );
  }
  if ("TERN_RUNNER_BUNDLE_SHA256" in present && !("TERN_RUNNER_BUNDLE" in present)) {
    problems.push(
      "TERN_RUNNER_BUNDLE is missing: TERN_RUNNER_BUNDLE_SHA256 is set without the bundle's s3://<bucket>/<key>",
    );
  }
  if (needs.rules && !("TERN_TRIGGER_RULES" in present) && !("TERN_TRIGGER_RULES_URL" in present)) {
    problems.push(
      "TERN_TRIGGER_RULES (JSON) or TERN_TRIGGER_RULES_URL (s3://bucket/key) is missing: the trigger rules",
    );
  }
  if (needs.cloudEvents) {
    require("TERN_CLOUDEVENTS_AUTH", 'how requests are authenticated: "iam" (the function URL\'s IAM auth) or "hmac"');
    if (
      value.TERN_CLOUDEVENTS_AUTH === "hmac" &&
      !("TERN_CLOUDEVENTS_SECRET_ARN" in present) &&
      !("TERN_CLOUDEVENTS_SECRET" in present)
    ) {
      problems.push(
        "TERN_CLOUDEVENTS_SECRET_ARN is missing: with hmac auth, the Secrets Manager secret holding the signing key",
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const labels = (value.TERN_AGENT_LABELS ?? "")
    .split(",")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const rulesUrl = value.TERN_TRIGGER_RULES_URL;
  const s3 = rulesUrl === undefined ? undefined : /^s3:\/\/([^/]+)\/(.+)$/.exec(rulesUrl);
  return {
    backendUrl: value.TERN_BACKEND as string,
    labels,
    safetyMarginMs: Number(value.TERN_SAFETY_MARGIN_MS ?? 15_000),
    submittedGraceMs: Number(value.TERN_SUBMITTED_GRACE_MS ?? 300_000),
    ...(value.TERN_TRIGGER_RULES !== undefined
      ? { rules: { inline: value.TERN_TRIGGER_RULES } }
      : s3 !== undefined && s3 !== null
        ? { rules: { s3: { bucket: s3[1] as string, key: s3[2] as string } } }
        : {}),
    ...(value.TERN_LAUNCH_QUEUE_URL === undefined ? {} : { launchQueueUrl: value.TERN_LAUNCH_QUEUE_URL }),
    ...(value.TERN_CLOUDEVENTS_AUTH === undefined
      ? {}
      : {
          cloudEvents: {
            auth: value.TERN_CLOUDEVENTS_AUTH,
            ...(value.TERN_CLOUDEVENTS_SECRET_ARN === undefined
              ? {}
              : { secretArn: value.TERN_CLOUDEVENTS_SECRET_ARN }),
            ...(value.TERN_CLOUDEVENTS_SECRET === undefined ? {} : { secret: value.TERN_CLOUDEVENTS_SECRET }),
            toleranceSeconds: Number(value.TERN_SIGNATURE_TOLERANCE_S ?? 300),
          },
        }),
  };
}
