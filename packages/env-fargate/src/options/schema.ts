import type { EnvironmentOptions } from "@tern/core";
import { EnvironmentError } from "@tern/core/plugin";
import * as z from "zod/mini";
import { AWS_ID_PATTERNS, parseRunnerBundle, SHA256, TAG_CHARACTERS } from "./aws-ids.js";
import { extrasSchema } from "./extras.js";
import { optionError, optionPath, show, WHERE } from "./option-error.js";
import { secretLooking } from "./secret-scan.js";
import type { FargateJsonOptions, FargateTaskEnvironmentOptions } from "./types.js";

/**
 * The options' schema: a strict object (unknown options are refused, never dropped) whose fields
 * carry tern's messages, with the rules between fields as checks. It is built on first use: a
 * flow that names the environment pays for zod's module, not for building the schema, until it
 * constructs one.
 */

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

/** Variables tern sets in the runner's container itself (per run, or from the runner bundle). */
const RESERVED_VARIABLES: readonly string[] = ["TERN_RUN_ID", "TERN_BACKEND", "TERN_RUNNER_URL", "TERN_RUNNER_SHA256"];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** An image reference that names an x86 architecture in its path or tag (`amd64/node`, `app:1-amd64`). */
const X86_ONLY_IMAGE = /(^|[/:@_.-])(amd64|x86_64|x86-64)([/:@_.-]|$)/i;

/** A value `ok` accepts, else the message made from it. */
const value = <T>(ok: (v: unknown) => boolean, message: (v: unknown) => string) =>
  z.custom<T>(ok, { error: (issue) => message(issue.input) });

/** A non-blank string matching `pattern`. */
const text = (pattern: RegExp, hint: string) =>
  value<string>(
    (v) => typeof v === "string" && v.trim() !== "" && pattern.test(v),
    (v) => `${show(v)} is not valid: ${hint}.`,
  );

const integer = (min: number, max: number) =>
  value<number>(
    (v) => typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max,
    (v) => `expected an integer from ${min} to ${max}, got ${show(v)}.`,
  );

/** A list of ids, each matching `pattern`, duplicates dropped. */
const ids = (pattern: RegExp, example: string) =>
  z.pipe(
    value<string[]>(
      (v) => Array.isArray(v) && v.every((id) => typeof id === "string"),
      (v) => `expected a list of ids such as ["${example}"], got ${show(v)}.`,
    ).check(
      z.superRefine((list, ctx) => {
        const bad = list.find((id) => !pattern.test(id));
        if (bad !== undefined)
          ctx.addIssue({ code: "custom", input: list, message: `${show(bad)} is not an id such as "${example}".` });
      }),
    ),
    z.transform((list) => [...new Set(list)]),
  );

/** At most `max` ids (counted without duplicates). */
const atMost = (max: number, what: string) =>
  z.refine<string[]>((list) => list.length <= max, {
    error: (issue) => `ECS takes at most ${max} ${what}, got ${(issue.input as string[]).length}.`,
  });

/** An object of variables (environment, secrets): names checked, values strings. */
const variables = () =>
  z
    .record(
      z.string(),
      value<string>(
        (v) => typeof v === "string",
        (v) => `expected a string, got ${show(v)}. Convert it with String(...) or JSON.stringify(...).`,
      ),
      { error: (issue) => `expected an object of strings, got ${show(issue.input)}.` },
    )
    .check(
      z.superRefine((record, ctx) => {
        const bad = Object.keys(record).find((name) => !ENV_NAME.test(name));
        if (bad !== undefined) {
          ctx.addIssue({
            code: "custom",
            input: record,
            message: `${show(bad)} is not a valid variable name (letters, digits and _, not starting with a digit).`,
          });
        }
      }),
    );

/** The first problem of one variable of `environment`, or undefined. */
function environmentProblem(name: string, text: string): string | undefined {
  if (RESERVED_VARIABLES.includes(name)) return "tern sets this variable for each run; remove it.";
  const why = secretLooking(name, text);
  if (why === undefined) return undefined;
  return `${why}. Plain environment values are stored in the task definition and the flow's manifest for anyone to read. Put the value in Secrets Manager or SSM Parameter Store and pass secrets: { ${name}: "arn:aws:secretsmanager:<region>:<account>:secret:<name>" } instead.`;
}

/** The first problem of one tag, with the path below `tags`, or undefined. */
function tagProblem(key: string, tag: unknown): { path: string[]; message: string } | undefined {
  if (key.length === 0 || key.length > 128 || /^aws:/i.test(key) || /^tern:/.test(key)) {
    return {
      path: [],
      message: `tag key ${show(key)} must have 1 to 128 characters and not start with "aws:" or "tern:".`,
    };
  }
  if (typeof tag !== "string" || tag.length > 256) {
    return { path: [key], message: `expected a string of at most 256 characters, got ${show(tag)}.` };
  }
  if (/^aws:/i.test(tag)) {
    return {
      path: [key],
      message: `the value ${show(tag)} starts with "aws:", which ECS reserves for AWS's own tags (keys and values alike); choose another value.`,
    };
  }
  const refused = (
    [
      ["key", key],
      ["value", tag],
    ] as const
  ).find(([, t]) => !TAG_CHARACTERS.test(t));
  if (refused === undefined) return undefined;
  return {
    path: [key],
    message: `the tag ${refused[0]} ${show(refused[1])} has characters ECS refuses; use letters, digits, spaces and _ . : / = + - @.`,
  };
}

/** Checks each entry of a record with `problem`, reporting the first one. */
const eachEntry = <V>(problem: (key: string, value: V) => { path: string[]; message: string } | undefined) =>
  z.superRefine<Record<string, V>>((record, ctx) => {
    for (const [key, entry] of Object.entries(record)) {
      const found = problem(key, entry);
      if (found === undefined) continue;
      ctx.addIssue({ code: "custom", input: record, path: found.path, message: found.message });
      return;
    }
  });

function buildSchema() {
  const capacityProvider = z.strictObject(
    {
      capacityProvider: z.enum(["FARGATE", "FARGATE_SPOT"], {
        error: (issue) => `${show(issue.input)} is not "FARGATE" or "FARGATE_SPOT".`,
      }),
      weight: z.optional(integer(0, 1000)),
      base: z.optional(integer(0, 100000)),
    },
    {
      error: (issue) =>
        issue.code === "unrecognized_keys"
          ? `unknown key ${show(issue.keys[0])}; the keys are capacityProvider, weight and base.`
          : `expected { capacityProvider, weight?, base? }, got ${show(issue.input)}.`,
    },
  );
  const strategyError = (issue: { input?: unknown }) =>
    `expected 1 to 6 entries such as [{ capacityProvider: "FARGATE_SPOT", weight: 1 }], got ${show(issue.input)}.`;
  const logError = (issue: { input?: unknown }) =>
    `expected { group?, streamPrefix? } or "none", got ${show(issue.input)}.`;
  const logObject = z.strictObject(
    {
      group: z.optional(text(AWS_ID_PATTERNS.logGroup, "give a CloudWatch Logs group name")),
      streamPrefix: z.optional(text(/^[^:*]{1,256}$/, "no ':' or '*'")),
    },
    {
      error: (issue) =>
        issue.code === "unrecognized_keys"
          ? `unknown key ${show(issue.keys[0])}; the keys are group and streamPrefix (awslogs), or pass "none".`
          : logError(issue),
    },
  );
  // EnvironmentOptions: core's own (checked there), left out of the JSON options.
  const core = <K extends keyof EnvironmentOptions>() => z.optional(z.custom<EnvironmentOptions[K]>());
  const shape = {
    labels: core<"labels">(),
    onStart: core<"onStart">(),
    onExit: core<"onExit">(),
    dependencies: core<"dependencies">(),
    family: z.optional(text(AWS_ID_PATTERNS.family, "use 1 to 255 letters, digits, hyphens and underscores")),
    cluster: z.optional(text(AWS_ID_PATTERNS.cluster, "give a cluster name or ARN")),
    region: z.optional(text(AWS_ID_PATTERNS.region, 'give a region such as "eu-west-1"')),
    image: z.optional(
      text(
        AWS_ID_PATTERNS.image,
        "give an image URI such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1.0",
      ),
    ),
    runnerBundle: z.optional(
      value<string>(
        (v) => typeof v === "string" && (v === "none" || parseRunnerBundle(v) !== undefined),
        (v) =>
          `${show(v)} is not a runner bundle location: give s3://<bucket>/<key> (the object the tern stack deploys, e.g. s3://my-assets-bucket/runner/abc123.mjs), or "none" to run tern execute from the image.`,
      ),
    ),
    runnerBundleSha256: z.optional(
      z.pipe(
        value<string>(
          (v) => typeof v === "string" && SHA256.test(v),
          (v) =>
            `${show(v)} is not a sha256: give the bundle's 64 hex digits (what bundleRunner returns, or sha256sum runner.mjs).`,
        ),
        z.transform((sha256) => sha256.toLowerCase()),
      ),
    ),
    cpu: z.optional(
      value<number>(
        (v) => typeof v === "number" && FARGATE_SIZES.has(v),
        (v) =>
          `${show(v)} is not a Fargate size. Use one of ${[...FARGATE_SIZES.keys()].join(", ")} (CPU units; 1024 = 1 vCPU).`,
      ),
    ),
    // Checked with cpu, below.
    memory: z.optional(z.custom<number>()),
    subnets: z.optional(
      ids(AWS_ID_PATTERNS.subnet, "subnet-0123456789abcdef0").check(
        z.refine(
          (list) => list.length > 0,
          'no subnets given. Fargate tasks need at least one: pass subnets: ["subnet-..."] (private subnets with a NAT or VPC endpoints), or leave it out to use TERN_ECS_SUBNETS where the agent runs.',
        ),
        atMost(16, "subnets"),
      ),
    ),
    securityGroups: z.optional(
      ids(AWS_ID_PATTERNS.securityGroup, "sg-0123456789abcdef0").check(atMost(5, "security groups")),
    ),
    assignPublicIp: z.optional(z.boolean({ error: (issue) => `expected true or false, got ${show(issue.input)}.` })),
    taskRoleArn: z.optional(
      text(AWS_ID_PATTERNS.roleArn, "give an IAM role ARN such as arn:aws:iam::123456789012:role/tern-task"),
    ),
    executionRoleArn: z.optional(
      text(AWS_ID_PATTERNS.roleArn, "give an IAM role ARN such as arn:aws:iam::123456789012:role/tern-task"),
    ),
    containerName: z.optional(text(AWS_ID_PATTERNS.family, "use letters, digits, hyphens and underscores")),
    environment: z.optional(
      variables().check(
        eachEntry<string>((name, v) => {
          const message = environmentProblem(name, v);
          return message === undefined ? undefined : { path: [name], message };
        }),
      ),
    ),
    secrets: z.optional(
      variables().check(
        eachEntry<string>((name, arn) =>
          AWS_ID_PATTERNS.secretArn.test(arn)
            ? undefined
            : {
                path: [name],
                message:
                  "is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>) or an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>); its value is not shown, in case it is the secret itself. Pass the secret's ARN, never its value.",
              },
        ),
      ),
    ),
    logConfiguration: z.optional(z.union([z.literal("none"), logObject], { error: logError })),
    launchType: z.optional(
      z.literal("FARGATE", {
        error: (issue) =>
          `${show(issue.input)} is not supported: use "FARGATE", or capacityProviderStrategy: [{ capacityProvider: "FARGATE_SPOT" }] for Spot.`,
      }),
    ),
    capacityProviderStrategy: z.optional(
      z
        .array(capacityProvider, { error: strategyError })
        .check(z.refine((s) => s.length >= 1 && s.length <= 6, { error: strategyError })),
    ),
    platformVersion: z.optional(text(/^(LATEST|\d+\.\d+\.\d+)$/, 'use "LATEST" or a version such as "1.4.0"')),
    runtimePlatform: z.optional(
      z.strictObject(
        {
          cpuArchitecture: z.optional(
            z.enum(["X86_64", "ARM64"], { error: (issue) => `${show(issue.input)} is not "X86_64" or "ARM64".` }),
          ),
        },
        { error: (issue) => `expected { cpuArchitecture: "X86_64" | "ARM64" }, got ${show(issue.input)}.` },
      ),
    ),
    ephemeralStorageGiB: z.optional(integer(21, 200)),
    tags: z.optional(
      z
        // Each value is checked with its key (tagProblem).
        .record(z.string(), z.custom<string>(), {
          error: (issue) => `expected an object of strings, got ${show(issue.input)}.`,
        })
        .check(
          z.refine((tags) => Object.keys(tags).length <= 40, {
            error: (issue) =>
              `at most 40 tags (tern adds its own, ECS keeps 50), got ${Object.keys(issue.input as object).length}.`,
          }),
          eachEntry(tagProblem),
        ),
    ),
    maxRelaunches: z.optional(integer(0, 10)),
    launchAttempts: z.optional(integer(1, 20)),
    launchBackoffMs: z.optional(integer(0, 60_000)),
    extraTaskDefinition: z.optional(extrasSchema("extraTaskDefinition")),
    extraContainerDefinition: z.optional(extrasSchema("extraContainerDefinition")),
    extraRunTask: z.optional(extrasSchema("extraRunTask")),
  };
  const known = Object.keys(shape);
  return z
    .strictObject(shape, {
      error: (issue) =>
        issue.code === "unrecognized_keys"
          ? `unknown option ${show(issue.keys[0])}. Known options: ${known.join(", ")}. For ECS fields tern does not set, use extraTaskDefinition, extraContainerDefinition or extraRunTask.`
          : `expected an object of options, got ${show(issue.input)}.`,
    })
    .check(
      // The rules between options, checked once every option is valid on its own.
      z.superRefine(
        (options, ctx) => {
          const problem = crossFieldProblem(options);
          if (problem !== undefined)
            ctx.addIssue({ code: "custom", input: options, path: [problem.path], message: problem.message });
        },
        { when: (payload) => payload.issues.length === 0 },
      ),
    );
}

/** The first rule between options that `o` breaks, with the option to name, or undefined. */
function crossFieldProblem(o: FargateJsonOptions): { path: string; message: string } | undefined {
  const issue = (path: string, message: string) => ({ path, message });
  // runnerBundle and runnerBundleSha256: given together, or runnerBundle "none" alone.
  if (o.runnerBundle === "none" && o.runnerBundleSha256 !== undefined) {
    return issue("runnerBundleSha256", 'remove it: runnerBundle is "none".');
  }
  if (o.runnerBundle === undefined && o.runnerBundleSha256 !== undefined) {
    return issue("runnerBundle", "missing: runnerBundleSha256 is given; give both or neither.");
  }
  if (o.runnerBundle !== undefined && o.runnerBundle !== "none" && o.runnerBundleSha256 === undefined) {
    return issue(
      "runnerBundleSha256",
      `missing: runnerBundle is ${show(o.runnerBundle)}; give both or neither (the bootstrap refuses a bundle it cannot verify).`,
    );
  }
  const cpu = o.cpu ?? 512;
  const memories = FARGATE_SIZES.get(cpu) ?? [];
  const memory = o.memory ?? 1024;
  if (typeof memory !== "number" || !memories.includes(memory)) {
    return issue(
      "memory",
      `${show(memory)} MiB is not valid with cpu ${cpu}${o.cpu === undefined ? " (the default cpu; set cpu to change it)" : ""}${o.memory === undefined ? " (1024 is the default memory)" : ""}. With cpu ${cpu}, memory must be one of: ${memories.join(", ")} (MiB).`,
    );
  }
  const overlap = Object.keys(o.environment ?? {}).filter((name) => name in (o.secrets ?? {}));
  if (overlap.length > 0)
    return issue("secrets", `${overlap.join(", ")} is also in environment; keep it in one of them.`);
  if (o.launchType !== undefined && o.capacityProviderStrategy !== undefined) {
    return issue("launchType", "give launchType or capacityProviderStrategy, not both (ECS refuses both).");
  }
  // ARM64 checks that need no registry: Fargate Spot runs no ARM64 task, and an image whose
  // reference names an x86 architecture has no arm64 variant. Whether a multi-architecture image
  // holds an arm64 variant is known only to its registry: ECS then fails the task with
  // CannotPullContainerError ("no matching manifest"), which the reconciler explains.
  if (o.runtimePlatform?.cpuArchitecture !== "ARM64") return undefined;
  if (o.capacityProviderStrategy?.some((p) => p.capacityProvider === "FARGATE_SPOT")) {
    return issue(
      "runtimePlatform",
      'ARM64 tasks cannot run on Fargate Spot (AWS runs no ARM64 task on FARGATE_SPOT): use capacityProviderStrategy [{ capacityProvider: "FARGATE" }] (or leave it out), or cpuArchitecture "X86_64" to keep Spot.',
    );
  }
  if (o.image !== undefined && X86_ONLY_IMAGE.test(o.image)) {
    return issue(
      "runtimePlatform",
      `ARM64 with image ${show(o.image)}, whose reference names an x86 architecture: it has no arm64 variant. Use a multi-architecture or arm64 image, or cpuArchitecture "X86_64".`,
    );
  }
  return undefined;
}

type OptionsSchema = ReturnType<typeof buildSchema>;
let schema: OptionsSchema | undefined;

// The schema checks exactly the documented options, and its output is what the interface says.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameKeys: Same<keyof z.output<OptionsSchema>, keyof FargateTaskEnvironmentOptions> = true;
const outputFits: z.output<OptionsSchema> extends FargateTaskEnvironmentOptions ? true : false = true;
void [sameKeys, outputFits];

/** The options tern keeps out of the JSON ones (functions and core's own). */
const NOT_JSON = ["labels", "onStart", "onExit", "dependencies"] as const;

/** The first issue to report: an unknown option before anything else, a union's branch that fits. */
function firstIssue(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue | undefined {
  const issue = issues.find((i) => i.path.length === 0) ?? issues[0];
  if (issue?.code !== "invalid_union") return issue;
  // Of a union (logConfiguration), the branch the value was meant for: the one not refusing its type.
  const branch = issue.errors.find((errors) => errors[0] !== undefined && errors[0].path.length > 0);
  const inner = branch === undefined ? undefined : firstIssue(branch);
  return inner === undefined ? issue : { ...inner, path: [...issue.path, ...inner.path] };
}

/**
 * Checks every option given (not the defaults the agent's environment will supply) and returns
 * the JSON ones. Throws an `EnvironmentError` naming the option and the fix.
 */
export function validateOptions(options: FargateTaskEnvironmentOptions): FargateJsonOptions {
  schema ??= buildSchema();
  const parsed = z.safeParse(schema, options);
  if (!parsed.success) {
    const issue = firstIssue(parsed.error.issues);
    const path = optionPath(issue?.path ?? []);
    throw path === "" ? new EnvironmentError(`${WHERE}: ${issue?.message}`) : optionError(path, issue?.message ?? "");
  }
  const json: Record<string, unknown> = { ...parsed.data };
  for (const key of NOT_JSON) delete json[key];
  return json as FargateJsonOptions;
}
