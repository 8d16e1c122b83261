import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { IgnoreMode, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecr from "aws-cdk-lib/aws-ecr";
import * as ecrAssets from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { grantFlowImagePull } from "./flow-images.js";
import {
  type BuildImageOptions,
  DEFAULT_CACHE_PREFIX,
  defaultRunnerSource,
  type RunnerBundle,
  type RunnerImage,
  type RunnerSource,
  runnerBundle,
  STOCK_NODE_IMAGE,
  type StockImageOptions,
  stockImageProblems,
} from "./runner-image.js";

/** The repository root (the build context of `image: "build"`). */
export const REPOSITORY_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** An existing VPC (its private subnets run the tasks), or how to create one. */
export type VpcSpec =
  | {
      readonly import: {
        readonly vpcId: string;
        readonly availabilityZones: string[];
        readonly privateSubnetIds: string[];
      };
    }
  | { readonly create: { readonly maxAzs?: number; readonly natGateways?: number; readonly endpoints?: boolean } };

/** Props of {@link TernNetwork}. */
export interface TernNetworkProps {
  /** @default create with one NAT gateway */
  readonly vpc?: VpcSpec;
  readonly logRetention: logs.RetentionDays;
}

/**
 * Where tasks run: a VPC (imported, or created with private subnets that reach AWS through NAT
 * gateways or VPC endpoints for ECR, S3, CloudWatch Logs, DynamoDB and Secrets Manager), an ECS
 * cluster with Container Insights, a security group for tasks (HTTPS out, nothing in) and the
 * log group of the runs' output.
 */
export class TernNetwork extends Construct {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.ISubnet[];
  readonly cluster: ecs.Cluster;
  readonly taskSecurityGroup: ec2.SecurityGroup;
  readonly runLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: TernNetworkProps) {
    super(scope, id);
    const spec = props.vpc ?? { create: { natGateways: 1 } };
    if ("import" in spec) {
      this.vpc = ec2.Vpc.fromVpcAttributes(this, "Vpc", {
        vpcId: spec.import.vpcId,
        availabilityZones: spec.import.availabilityZones,
        privateSubnetIds: spec.import.privateSubnetIds,
      });
      this.subnets = this.vpc.privateSubnets;
    } else {
      const endpoints = spec.create.endpoints ?? false;
      const natGateways = endpoints ? (spec.create.natGateways ?? 0) : (spec.create.natGateways ?? 1);
      const vpc = new ec2.Vpc(this, "Vpc", {
        maxAzs: spec.create.maxAzs ?? 2,
        natGateways,
        subnetConfiguration: [
          { name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
          {
            name: "tasks",
            subnetType: natGateways > 0 ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED,
            cidrMask: 20,
          },
        ],
        flowLogs: {
          rejected: {
            destination: ec2.FlowLogDestination.toCloudWatchLogs(
              new logs.LogGroup(this, "FlowLogs", {
                retention: props.logRetention,
                removalPolicy: RemovalPolicy.DESTROY,
              }),
            ),
            trafficType: ec2.FlowLogTrafficType.REJECT,
          },
        },
      });
      this.vpc = vpc;
      this.subnets = vpc.selectSubnets({ subnetGroupName: "tasks" }).subnets;
      if (endpoints) {
        vpc.addGatewayEndpoint("S3", { service: ec2.GatewayVpcEndpointAwsService.S3 });
        vpc.addGatewayEndpoint("DynamoDB", { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB });
        for (const [name, service] of [
          ["EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR],
          ["EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
          ["Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
          ["SecretsManager", ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
        ] as const) {
          const endpoint = vpc.addInterfaceEndpoint(name, {
            service,
            subnets: { subnetGroupName: "tasks" },
            privateDnsEnabled: true,
          });
          Validations.of(endpoint).acknowledge({
            id: "AwsSolutions-EC23",
            reason:
              "The endpoint's security group accepts HTTPS from the VPC's own CIDR only; cdk-nag cannot resolve the CIDR (a CloudFormation attribute) and reads it as open.",
          });
        }
      }
    }
    this.cluster = new ecs.Cluster(this, "Cluster", {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      // FARGATE_SPOT for FargateTaskEnvironment's Spot option (x86 tasks only: Spot runs no ARM64).
      enableFargateCapacityProviders: true,
    });
    this.taskSecurityGroup = new ec2.SecurityGroup(this, "TaskSecurityGroup", {
      vpc: this.vpc,
      description: "tern runner tasks - HTTPS out to AWS APIs and the services flows call, nothing in",
      allowAllOutbound: false,
    });
    this.taskSecurityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      "HTTPS to AWS APIs and the flows' services",
    );
    this.runLogs = new logs.LogGroup(this, "RunLogs", {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }
}

/** Props of {@link TernRunner}. */
export interface TernRunnerProps {
  /**
   * The image tasks start from (see {@link RunnerImage}).
   * @default the stock Node.js image, through an ECR pull-through cache (no Docker build)
   */
  readonly image?: RunnerImage;
  /**
   * How a task gets tern: `"bundle"` sets `TERN_RUNNER_BUNDLE` on the launching functions, and
   * tasks download the runner bundle and check its sha256 before running it (the image needs only
   * Node.js 22 or later as `node`); `"image"` runs the image's own `tern`.
   * @default "bundle" for the stock image, "image" for `{ uri }` and built images
   */
  readonly runner?: RunnerSource;
  readonly bucket: s3.IBucket;
  readonly table: dynamodb.ITableV2;
  readonly runLogs: logs.ILogGroup;
  /** Secrets Manager secret ARNs flows may name in `secrets`. @default [] */
  readonly secrets?: readonly string[];
  /** Secrets Manager secret ARNs storages read at use (GitStorage's `auth.secretArn`): the task roles may read them. @default [] */
  readonly storageSecrets?: readonly string[];
  /**
   * Per-project task roles: a role each, that reads only its project's flow versions (besides
   * the runs' partitions every runner needs), with the managed policies given (what that
   * project's flows need). The agent runs a project's flows with its role, and only with it.
   * @default none (every project runs with the shared task role)
   */
  readonly projectTaskRoles?: Readonly<Record<string, { readonly managedPolicyArns?: readonly string[] }>>;
  /**
   * The repository of flow images (`FlowImages.repository`): the execution role may pull from it
   * (tasks of Docker-stored flows start from their version's image, by digest), and log in to
   * ECR whatever the runner image is.
   * @default none
   */
  readonly flowImages?: ecr.IRepository;
}

/** Lets `grantee` read the storages' secrets named (GetSecretValue on those ARNs only), if any. */
export function grantStorageSecrets(grantee: iam.IGrantable, arns: readonly string[] = []): void {
  if (arns.length === 0) return;
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ["secretsmanager:GetSecretValue"], resources: [...arns] }),
  );
}

/**
 * The state table's partitions a runner touches (packages/backend-dynamodb/src/keys.ts): its run's
 * `RUN#<run id>` (the run item, its task runs `T#`, logs `L#` and chunks) and the flow versions
 * `FLOW#<project>#<flow>` it reads. Project names are escaped as the backend escapes them.
 */
export const RUNNER_PARTITIONS = {
  runs: "RUN#*",
  flowVersions: (project?: string) =>
    project === undefined ? "FLOW#*" : `FLOW#${project.replaceAll("%", "%25").replaceAll("#", "%23")}#*`,
} as const;

/**
 * What a runner (`tern execute`) does on the state table, and nothing more: DescribeTable when
 * it opens the backend; GetItem, Query, UpdateItem and BatchWriteItem on runs' partitions (its
 * run, task runs, logs and the chunks of large values); GetItem of flow versions (of one project
 * with `project`). No Scan, no PutItem or DeleteItem, no index, and no other partition (the flow
 * registry's summaries, agents, idempotency keys). IAM cannot name the one run a task serves (the
 * run id is chosen after the role exists, and ECS passes no session tags), so "its run" is
 * bounded at runs' partitions.
 */
export function grantRunnerState(role: iam.IRole, table: dynamodb.ITableV2, project?: string): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ["dynamodb:DescribeTable"], resources: [table.tableArn] }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
      resources: [table.tableArn],
      conditions: { "ForAllValues:StringLike": { "dynamodb:LeadingKeys": [RUNNER_PARTITIONS.runs] } },
    }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ["dynamodb:GetItem"],
      resources: [table.tableArn],
      conditions: { "ForAllValues:StringLike": { "dynamodb:LeadingKeys": [RUNNER_PARTITIONS.flowVersions(project)] } },
    }),
  );
}

/** The repository's Dockerfile that `image: "build"` builds, relative to {@link REPOSITORY_ROOT}. */
const REPOSITORY_DOCKERFILE = join("packages", "env-fargate", "docker", "Dockerfile");

const ECR_PULL = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"];

/**
 * The runner: its image, its code and its two roles. The execution role pulls the image (and,
 * for the stock image, lets ECR import it into the pull-through cache's repository: that
 * repository only) and the flow images (`flowImages`), writes the log group and reads the named
 * secrets; the task role (what the flow's code runs as) reads the flow bucket and does on the
 * state table only what a runner does ({@link grantRunnerState}); per-project task roles the
 * same, for one project's flow versions.
 * Nothing wider.
 * With `runner: "bundle"` the runner bundle is an S3 asset ({@link TernRunner.bundle}) that the
 * launching functions presign for each task; the task itself needs no permission for it.
 */
export class TernRunner extends Construct {
  readonly imageUri: string;
  /**
   * The CPU architectures the runner image is known to have (`TERN_RUNNER_IMAGE_ARCHITECTURES`):
   * the stock Node.js image both, an image built here X86_64 only, an image URI unknown.
   */
  readonly imageArchitectures?: ReadonlyArray<"X86_64" | "ARM64">;
  readonly executionRole: iam.Role;
  readonly taskRole: iam.Role;
  /** The per-project task roles, by project (config `projectTaskRoles`). */
  readonly projectTaskRoles: Readonly<Record<string, iam.Role>>;
  /** How tasks get tern. */
  readonly runner: RunnerSource;
  /** The runner bundle tasks download at start (with `runner: "bundle"`). */
  readonly bundle?: RunnerBundle;
  /** The pull-through cache rule of the stock image (unless `createCacheRule: false`). */
  readonly cacheRule?: ecr.CfnPullThroughCacheRule;

  constructor(scope: Construct, id: string, props: TernRunnerProps) {
    super(scope, id);
    this.executionRole = new iam.Role(this, "ExecutionRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description:
        "tern runner tasks' execution role: pull the runner image and flow images, write its logs, read named secrets",
    });
    this.taskRole = new iam.Role(this, "TaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "tern runner tasks: read flows from the bucket, read and write run state",
    });
    const image = props.image ?? "stock";
    if (image === "stock" || (typeof image === "object" && "stock" in image)) {
      const pulled = this.stockImage(image === "stock" ? {} : image.stock);
      this.imageUri = pulled.uri;
      // The official Node.js image is published for linux/amd64 and linux/arm64.
      this.imageArchitectures = ["X86_64", "ARM64"];
      this.cacheRule = pulled.rule;
    } else if (image === "build" || (typeof image === "object" && "build" in image)) {
      const asset = image === "build" ? this.repositoryImage() : this.builtImage(image.build);
      asset.repository.grantPull(this.executionRole);
      this.imageUri = asset.imageUri;
      // Built for Platform.LINUX_AMD64 below.
      this.imageArchitectures = ["X86_64"];
    } else if (
      typeof image === "object" &&
      "uri" in image &&
      typeof image.uri === "string" &&
      /^\S+$/.test(image.uri)
    ) {
      this.imageUri = image.uri;
      const ecrImage = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)/.exec(image.uri);
      if (ecrImage !== null) {
        // An image in ECR: pull from that repository only.
        this.executionRole.addToPolicy(
          new iam.PolicyStatement({
            actions: ECR_PULL,
            resources: [
              Stack.of(this).formatArn({
                service: "ecr",
                region: ecrImage[2],
                account: ecrImage[1],
                resource: "repository",
                resourceName: ecrImage[3],
              }),
            ],
          }),
        );
        this.grantEcrLogin();
      }
    } else {
      throw new Error(
        `TernRunner image: ${JSON.stringify(image)} is not a runner image. Use "stock" (the default), { stock: { tag, digest, cachePrefix } }, { uri: "<image URI>" }, { build: { directory, file } } or "build".`,
      );
    }
    this.runner = props.runner ?? defaultRunnerSource(image);
    if (this.runner !== "bundle" && this.runner !== "image") {
      throw new Error(`TernRunner runner: ${JSON.stringify(this.runner)} is neither "bundle" nor "image".`);
    }
    if (this.runner === "bundle") this.bundle = runnerBundle(this, "Bundle");
    if (props.flowImages !== undefined) grantFlowImagePull(this.executionRole, props.flowImages);
    props.runLogs.grantWrite(this.executionRole);
    if ((props.secrets ?? []).length > 0) {
      this.executionRole.addToPolicy(
        new iam.PolicyStatement({ actions: ["secretsmanager:GetSecretValue"], resources: [...(props.secrets ?? [])] }),
      );
    }
    props.bucket.grantRead(this.taskRole);
    grantRunnerState(this.taskRole, props.table);
    grantStorageSecrets(this.taskRole, props.storageSecrets);
    const projectRoles: Record<string, iam.Role> = {};
    for (const [project, options] of Object.entries(props.projectTaskRoles ?? {})) {
      const role = new iam.Role(this, `TaskRole-${project}`, {
        assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        description: `tern runner tasks of project ${project}: read flows, read and write runs`,
      });
      props.bucket.grantRead(role);
      grantRunnerState(role, props.table, project);
      grantStorageSecrets(role, props.storageSecrets);
      for (const arn of options.managedPolicyArns ?? []) {
        role.addManagedPolicy(
          iam.ManagedPolicy.fromManagedPolicyArn(this, `TaskPolicy-${project}-${arn.slice(-12)}`, arn),
        );
      }
      projectRoles[project] = role;
    }
    this.projectTaskRoles = projectRoles;
  }

  /**
   * The stock image through a pull-through cache rule for ECR Public: the image URI is this
   * account's and region's registry, `<prefix>/<repository>`, which ECR creates and fills at the
   * first pull. The execution role may pull from that one repository, and let ECR create it and
   * import the upstream image into it (`ecr:CreateRepository`, `ecr:BatchImportUpstreamImage`: what
   * a pull through the cache needs from the puller).
   */
  private stockImage(options: StockImageOptions): { uri: string; rule?: ecr.CfnPullThroughCacheRule } {
    const problems = stockImageProblems(options);
    if (problems.length > 0) throw new Error(`TernRunner image { stock }: ${problems.join("; ")}`);
    const stack = Stack.of(this);
    const prefix = options.cachePrefix ?? DEFAULT_CACHE_PREFIX;
    const repository = `${prefix}/${options.repository ?? STOCK_NODE_IMAGE.repository}`;
    const rule =
      options.createCacheRule === false
        ? undefined
        : new ecr.CfnPullThroughCacheRule(this, "ImageCache", {
            ecrRepositoryPrefix: prefix,
            upstreamRegistry: "ecr-public",
            upstreamRegistryUrl: "public.ecr.aws",
          });
    this.executionRole.addToPolicy(
      new iam.PolicyStatement({
        actions: [...ECR_PULL, "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
        resources: [stack.formatArn({ service: "ecr", resource: "repository", resourceName: repository })],
      }),
    );
    this.grantEcrLogin();
    const reference = options.digest === undefined ? `:${options.tag ?? STOCK_NODE_IMAGE.tag}` : `@${options.digest}`;
    return {
      uri: `${stack.account}.dkr.ecr.${stack.region}.${stack.urlSuffix}/${repository}${reference}`,
      ...(rule === undefined ? {} : { rule }),
    };
  }

  /** This repository's Dockerfile as an image asset (the repository is the build context). */
  private repositoryImage(): ecrAssets.DockerImageAsset {
    if (!existsSync(join(REPOSITORY_ROOT, REPOSITORY_DOCKERFILE))) {
      throw new Error(
        `TernRunner image "build" builds the tern repository's ${REPOSITORY_DOCKERFILE}, which is not here (${REPOSITORY_ROOT}): an installed @tern/infra does not contain it. Use the stock image (the default), { uri } of an image you publish, or { build: { directory } } with a Dockerfile of your own.`,
      );
    }
    return new ecrAssets.DockerImageAsset(this, "Image", {
      directory: REPOSITORY_ROOT,
      file: REPOSITORY_DOCKERFILE,
      platform: ecrAssets.Platform.LINUX_AMD64,
      exclude: [
        "**/node_modules",
        "**/dist",
        "**/.tern",
        ".git",
        "**/cdk.out",
        "**/.bundles",
        "**/.test-out-*",
        "bench/.generated",
        // Only what the image build reads: editing docs, tests or the infra app rebuilds nothing.
        "docs",
        "examples",
        "**/test",
        "infra/bin",
        "infra/lib",
        "infra/assets",
        "**/*.md",
        ".ci",
        "scripts",
      ],
    });
  }

  /** A Docker build of the caller's directory; with `include`, only those paths are its context. */
  private builtImage(options: BuildImageOptions): ecrAssets.DockerImageAsset {
    const directory = resolve(options.directory);
    const file = options.file ?? "Dockerfile";
    if (!existsSync(join(directory, file))) {
      throw new Error(
        `TernRunner image { build }: ${join(directory, file)} does not exist. build.directory is the Docker build context (relative to the CDK app's working directory) and build.file its Dockerfile (relative to the directory, default "Dockerfile").`,
      );
    }
    const include = options.include ?? [];
    for (const path of include) {
      if (isAbsolute(path) || path.split(/[\\/]/).includes("..") || path.startsWith("!") || path.trim() === "") {
        throw new Error(
          `TernRunner image { build }: include entry ${JSON.stringify(path)} must be a path inside build.directory, relative to it (e.g. "dist" or "package.json").`,
        );
      }
    }
    return new ecrAssets.DockerImageAsset(this, "Image", {
      directory,
      file,
      platform: ecrAssets.Platform.LINUX_AMD64,
      ignoreMode: IgnoreMode.DOCKER,
      // An allow-list: everything is left out, then the Dockerfile and the named paths come back.
      exclude:
        include.length > 0
          ? ["**", `!${file}`, ...include.map((path) => `!${path}`)]
          : [".git", "**/node_modules", "**/cdk.out"],
    });
  }

  /** `ecr:GetAuthorizationToken` takes no resource: AWS requires `*`. */
  private grantEcrLogin(): void {
    this.executionRole.addToPolicy(
      new iam.PolicyStatement({ actions: ["ecr:GetAuthorizationToken"], resources: ["*"] }),
    );
  }
}
