/**
 * The Fargate environment's option types, as users write them. They are kept as documented
 * interfaces (the schema in schema.ts is checked against them at compile time): an inferred type
 * would lose the readonly arrays and records users pass, and the JSDoc defaults they read.
 */
import type { EnvironmentOptions } from "@tern/core";
import type { FlowImage, JsonValue } from "@tern/core/plugin";

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

/** The JSON part of the options, validated. What goes into the manifest. */
export type FargateJsonOptions = Omit<FargateTaskEnvironmentOptions, "labels" | "onStart" | "onExit" | "dependencies">;

/** Everything a launch needs, options and defaults resolved. */
export interface ResolvedFargateConfig {
  readonly family: string;
  readonly cluster: string;
  readonly region: string;
  /** The image the task runs: the flow version's own image (`flowImage`) when it has one, else the runner image. */
  readonly image: string;
  /** The image the flow version is kept in (Docker storage), by digest; undefined: the runner image runs. */
  readonly flowImage?: FlowImage;
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
