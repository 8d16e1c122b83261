import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RemovalPolicy, Validations } from "aws-cdk-lib";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecrAssets from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";

/** The repository root (the runner image's build context). */
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
  /** Build env-fargate's Dockerfile (an image asset) or use an image URI. @default "build" */
  readonly image?: "build" | { readonly uri: string };
  readonly bucket: s3.IBucket;
  readonly table: dynamodb.ITableV2;
  readonly runLogs: logs.ILogGroup;
  /** Secrets Manager secret ARNs flows may name in `secrets`. @default [] */
  readonly secrets?: readonly string[];
}

/**
 * The runner: its image and its two roles. The execution role pulls the image, writes the log
 * group and reads the named secrets; the task role (what the flow's code runs as) reads the flow
 * bucket and reads and writes the state table. Nothing wider.
 */
export class TernRunner extends Construct {
  readonly imageUri: string;
  readonly executionRole: iam.Role;
  readonly taskRole: iam.Role;

  constructor(scope: Construct, id: string, props: TernRunnerProps) {
    super(scope, id);
    this.executionRole = new iam.Role(this, "ExecutionRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "tern runner tasks' execution role: pull the runner image, write its logs, read named secrets",
    });
    this.taskRole = new iam.Role(this, "TaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "tern runner tasks: read flows from the bucket, read and write run state",
    });
    const image = props.image ?? "build";
    if (image === "build") {
      const asset = new ecrAssets.DockerImageAsset(this, "Image", {
        directory: REPOSITORY_ROOT,
        file: join("packages", "env-fargate", "docker", "Dockerfile"),
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
          "**/*.md",
          ".ci",
          "scripts",
        ],
      });
      asset.repository.grantPull(this.executionRole);
      this.imageUri = asset.imageUri;
    } else {
      this.imageUri = image.uri;
      const ecr = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com\/([^:@]+)/.exec(image.uri);
      if (ecr !== null) {
        // An image in ECR: pull from that repository only.
        this.executionRole.addToPolicy(
          new iam.PolicyStatement({
            actions: ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            resources: [`arn:aws:ecr:${ecr[2]}:${ecr[1]}:repository/${ecr[3]}`],
          }),
        );
        this.executionRole.addToPolicy(
          new iam.PolicyStatement({ actions: ["ecr:GetAuthorizationToken"], resources: ["*"] }),
        );
      }
    }
    props.runLogs.grantWrite(this.executionRole);
    if ((props.secrets ?? []).length > 0) {
      this.executionRole.addToPolicy(
        new iam.PolicyStatement({ actions: ["secretsmanager:GetSecretValue"], resources: [...(props.secrets ?? [])] }),
      );
    }
    props.bucket.grantRead(this.taskRole);
    props.table.grantReadWriteData(this.taskRole);
  }
}
