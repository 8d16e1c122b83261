import { type CfnElement, CfnOutput, Stack, type StackProps, Token, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import { parseConfig, type TernConfig } from "./config.js";
import { FlowImages } from "./flow-images.js";
import { TernHandlers } from "./handlers.js";
import { TernNetwork, TernRunner } from "./runtime.js";
import { FlowBucket, StateTable } from "./storage.js";

/** Props of {@link TernStack}. */
export interface TernStackProps extends StackProps {
  readonly config?: TernConfig;
}

/**
 * Everything a team needs to run tern serverless: the flow bucket, the flow-image repository,
 * the state table, the network and cluster, the runner (image, bundle and roles), and the Lambda handlers with their
 * schedule and rules. Outputs what `tern register` needs in CI.
 */
export class TernStack extends Stack {
  readonly storage: FlowBucket;
  /** The ECR repository of flow images (`DockerStorage`): `flowImages.repository` to grant more. */
  readonly flowImages: FlowImages;
  readonly state: StateTable;
  readonly network: TernNetwork;
  readonly runner: TernRunner;
  readonly handlers: TernHandlers;
  /** What CI needs for `tern register`, `tern run` and `tern runs`: attach it to the CI role. */
  readonly ciPolicy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: TernStackProps = {}) {
    super(scope, id, props);
    // Checked here too: a JavaScript app passes whatever it likes, and a typo must be an error
    // that names it, not a TypeError deep in a construct.
    const config = parseConfig(props.config ?? {}, `TernStack "${id}" props.config`);
    const logRetention = (config.logRetentionDays ?? 30) as logs.RetentionDays;
    this.storage = new FlowBucket(this, "Flows", {
      ...(config.noncurrentVersionDays === undefined ? {} : { noncurrentVersionDays: config.noncurrentVersionDays }),
      ...(config.accessLogsBucket === undefined
        ? {}
        : { accessLogsBucket: s3.Bucket.fromBucketName(this, "AccessLogs", config.accessLogsBucket) }),
    });
    this.flowImages = new FlowImages(this, "FlowImages", {
      ...(config.flowImageMaxCount === undefined ? {} : { maxImageCount: config.flowImageMaxCount }),
    });
    this.state = new StateTable(this, "State", { deletionProtection: config.tableDeletionProtection ?? true });
    this.network = new TernNetwork(this, "Network", {
      ...(config.vpc === undefined ? {} : { vpc: config.vpc }),
      logRetention,
    });
    this.runner = new TernRunner(this, "Runner", {
      ...(config.runnerImage === undefined ? {} : { image: config.runnerImage }),
      ...(config.runner === undefined ? {} : { runner: config.runner }),
      bucket: this.storage.bucket,
      table: this.state.table,
      runLogs: this.network.runLogs,
      secrets: config.secrets ?? [],
      storageSecrets: config.storageSecrets ?? [],
      ...(config.projectTaskRoles === undefined ? {} : { projectTaskRoles: config.projectTaskRoles }),
      flowImages: this.flowImages.repository,
    });
    this.handlers = new TernHandlers(this, "Handlers", {
      table: this.state.table,
      bucket: this.storage.bucket,
      cluster: this.network.cluster,
      subnets: this.network.subnets,
      taskSecurityGroup: this.network.taskSecurityGroup,
      executionRole: this.runner.executionRole,
      taskRole: this.runner.taskRole,
      projectTaskRoles: this.runner.projectTaskRoles,
      imageUri: this.runner.imageUri,
      ...(this.runner.imageArchitectures === undefined ? {} : { imageArchitectures: this.runner.imageArchitectures }),
      ...(this.runner.bundle === undefined ? {} : { runnerBundle: this.runner.bundle }),
      runLogs: this.network.runLogs,
      storageSecrets: config.storageSecrets ?? [],
      flowImages: this.flowImages.repository,
      agentLabels: config.agentLabels ?? [],
      triggers: config.triggers ?? [],
      ...(config.cloudEvents === undefined ? {} : { cloudEvents: config.cloudEvents }),
      logRetention,
      ...(config.alarmEmail === undefined ? {} : { alarmEmail: config.alarmEmail }),
      ...(config.reservedConcurrency === undefined ? {} : { reservedConcurrency: config.reservedConcurrency }),
    });
    for (const arn of config.taskRoleManagedPolicyArns ?? []) {
      this.runner.taskRole.addManagedPolicy(
        iam.ManagedPolicy.fromManagedPolicyArn(this, `TaskPolicy${arn.slice(-12)}`, arn),
      );
    }
    // What CI needs to register flows and start or inspect runs: write the flow bucket, push to
    // the flow-image repository, read and write the state table, read the run log group's
    // streams. Attach it to the CI role (an OIDC role, see infra/README.md).
    this.ciPolicy = new iam.ManagedPolicy(this, "CiPolicy", {
      description:
        "tern CI: register flows (flow bucket, flow-image repository), start or inspect runs (state table, run logs)",
      statements: [
        new iam.PolicyStatement({
          actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
          resources: [this.storage.bucket.arnForObjects("*")],
        }),
        // ListBucket makes a missing key a 404 (not a 403), which registration relies on.
        new iam.PolicyStatement({ actions: ["s3:ListBucket"], resources: [this.storage.bucket.bucketArn] }),
        new iam.PolicyStatement({
          actions: [
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
          ],
          resources: [this.state.table.tableArn, `${this.state.table.tableArn}/index/*`],
        }),
        // `tern logs` reads the end of a run's task output when its runner never reported.
        new iam.PolicyStatement({ actions: ["logs:GetLogEvents"], resources: [this.network.runLogs.logGroupArn] }),
        // DockerStorage: push flow images (and read their tags) in the flow-image repository only;
        // pull from the base images' repositories named in this registry.
        ...this.flowImages.pushStatements(config.flowImageBaseRepositories ?? []),
      ],
    });

    new CfnOutput(this, "FlowBucketName", {
      value: this.storage.bucket.bucketName,
      description: "S3Storage bucket for flows (TERN_FLOW_BUCKET in CI)",
    });
    new CfnOutput(this, "CiPolicyArn", {
      value: this.ciPolicy.managedPolicyArn,
      description: "Managed policy to attach to the CI role that runs tern register",
    });
    new CfnOutput(this, "FlowImageRepositoryUri", {
      value: this.flowImages.repositoryUri,
      description: "ECR repository DockerStorage pushes flow images to (<registry>/<repository>)",
    });
    new CfnOutput(this, "StateTableName", { value: this.state.table.tableName, description: "DynamoDB state table" });
    new CfnOutput(this, "Region", { value: this.region, description: "Region of the bucket, table and cluster" });
    new CfnOutput(this, "ClusterName", {
      value: this.network.cluster.clusterName,
      description: "ECS cluster runs are launched on",
    });
    new CfnOutput(this, "TernBackend", {
      value: `dynamodb://${this.state.table.tableName}?region=${this.region}`,
      description: "TERN_BACKEND for tern register / run / runs in CI",
    });
    if (this.handlers.cloudEventsUrl !== undefined) {
      new CfnOutput(this, "CloudEventsUrl", {
        value: this.handlers.cloudEventsUrl.url,
        description: "POST CloudEvents here",
      });
    }
    if (this.handlers.cloudEventsSecret !== undefined) {
      new CfnOutput(this, "CloudEventsKeySecret", {
        value: this.handlers.cloudEventsSecret.secretArn,
        description: "Secrets Manager secret holding the HMAC key for X-Tern-Signature",
      });
    }
    this.acknowledge();
  }

  /**
   * cdk-nag findings tern accepts, each on the construct it concerns and with its reason. A
   * finding id names the exact resource or action (`AwsSolutions-IAM5[Resource::...]`), so an
   * acknowledgement never covers a wildcard it was not written for.
   */
  private acknowledge(): void {
    const logicalId = (construct: Construct) => this.getLogicalId(construct.node.defaultChild as CfnElement);
    const bucketArn = `<${logicalId(this.storage.bucket)}.Arn>`;
    const tableArn = `<${logicalId(this.state.table)}.Arn>`;
    const clusterRef = `<${logicalId(this.network.cluster)}>`;
    // cdk-nag names a resource by its ARN as synthesized: the stack's own region and account when
    // its env is explicit, the pseudo parameters when it is environment-agnostic.
    const regionAccount = [
      Token.isUnresolved(this.region) ? "<AWS::Region>" : this.region,
      Token.isUnresolved(this.account) ? "<AWS::AccountId>" : this.account,
    ].join(":");
    const ack = (construct: Construct, ...acknowledgments: Array<[id: string, reason: string]>) => {
      for (const [id, reason] of acknowledgments) Validations.of(construct).acknowledge({ id, reason });
    };
    const readsFlows: Array<[string, string]> = [
      [
        `AwsSolutions-IAM5[Resource::${bucketArn}/*]`,
        "Reads any flow object in the flow bucket: bundles and manifests are content-addressed keys under it.",
      ],
      [
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "bucket.grantRead: GetObject and its version/ACL/tagging reads, on the flow bucket only.",
      ],
      [
        "AwsSolutions-IAM5[Action::s3:GetBucket*]",
        "bucket.grantRead: bucket metadata reads (location, versioning), on the flow bucket only.",
      ],
      ["AwsSolutions-IAM5[Action::s3:List*]", "bucket.grantRead: listing the flow bucket only."],
      [
        `AwsSolutions-IAM5[Resource::${tableArn}/index/*]`,
        "The backend queries the state table's global secondary indexes (claims, listings, idempotency keys).",
      ],
    ];
    for (const fn of Object.values(this.handlers.functions)) {
      if (fn === undefined) continue;
      // The function and its role (a sibling construct) carry the same acknowledgements.
      for (const target of [fn, fn.role as unknown as Construct])
        ack(
          target,
          ...readsFlows,
          [
            "AwsSolutions-IAM5[Resource::*]",
            'ecs:RegisterTaskDefinition, ecs:DescribeTaskDefinition, ecs:ListTaskDefinitions and ecr:GetAuthorizationToken support no resource-level permissions; AWS requires Resource "*" for them (and only them in those statements).',
          ],
          [
            `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:${regionAccount}:task-definition/tern-*:*]`,
            "RunTask and tagging at creation are limited to tern's task-definition families (tern-*), any revision, and to this cluster by condition.",
          ],
          [
            `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:${regionAccount}:task/${clusterRef}/*]`,
            "DescribeTasks, StopTask and tagging at creation apply to this cluster's tasks, whose ids are not known in advance.",
          ],

          [
            "AwsSolutions-L1",
            "Node.js 22 is the runtime tern's handlers are built and tested for; it is pinned on purpose, not left to drift.",
          ],
        );
    }
    for (const role of [this.runner.taskRole, ...Object.values(this.runner.projectTaskRoles)]) ack(role, ...readsFlows);
    ack(
      this.ciPolicy,
      [
        `AwsSolutions-IAM5[Resource::${bucketArn}/*]`,
        "CI writes flow bundles and manifests: content-addressed keys under the flow bucket.",
      ],
      [
        `AwsSolutions-IAM5[Resource::${tableArn}/index/*]`,
        "tern run, tern runs and registration query the state table's indexes.",
      ],
      [
        "AwsSolutions-IAM5[Resource::*]",
        'ecr:GetAuthorizationToken supports no resource-level permissions; AWS requires Resource "*". Pushes and pulls are on the flow-image repository (and the base repositories named) only.',
      ],
    );
    ack(this.runner.executionRole, [
      "AwsSolutions-IAM5[Resource::*]",
      'ecr:GetAuthorizationToken supports no resource-level permissions; AWS requires Resource "*". Image layers are pulled from the runner\'s repository and the flow-image repository only.',
    ]);
    ack(this.storage.bucket, [
      "AwsSolutions-S1",
      "Server access logs are the team's choice (config accessLogsBucket); CloudTrail S3 data events are the alternative.",
    ]);
    if (this.handlers.cloudEventsSecret !== undefined) {
      ack(this.handlers.cloudEventsSecret, [
        "AwsSolutions-SMG4",
        "The HMAC key is shared with the senders of CloudEvents: rotating it must be coordinated with them, so it is rotated by hand (see infra/README.md).",
      ]);
    }
  }
}
