import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HASH_TAG, STACK_TAG } from "@tern/env-fargate";
import type { TriggerRuleInput } from "@tern/lambda";
import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import type * as ec2 from "aws-cdk-lib/aws-ec2";
import type * as ecr from "aws-cdk-lib/aws-ecr";
import type * as ecs from "aws-cdk-lib/aws-ecs";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as lambdaEventSources from "aws-cdk-lib/aws-lambda-event-sources";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import * as s3assets from "aws-cdk-lib/aws-s3-assets";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { grantFlowImageRead } from "./flow-images.js";
import { type HandlerName, handlerCode } from "./handler-code.js";
import type { RunnerBundle } from "./runner-image.js";
import { grantStorageSecrets } from "./runtime.js";

/** Reading the rules asset: that one object, not the whole assets bucket. */
function readRules(asset: s3assets.Asset): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions: ["s3:GetObject"],
    resources: [`arn:${Stack.of(asset).partition}:s3:::${asset.s3BucketName}/${asset.s3ObjectKey}`],
  });
}

/** Trigger rules above this size (as JSON) go to an S3 asset instead of an environment variable. */
export const INLINE_RULES_BYTES = 2_048;

/**
 * How many agent invocations the launch queue drives at once (the SQS event source's maximum
 * concurrency, 2 at least): whatever reaches the CloudEvents URL, launching takes at most this
 * much of the account's Lambda concurrency, with no reserved concurrency needed.
 */
export const LAUNCH_QUEUE_MAX_CONCURRENCY = 2;

/** Task-definition families the agent may run: `FargateTaskEnvironment`'s default is `tern-<flow>`. */
export const FAMILY_PREFIX = "tern-";

/** Props of {@link TernHandlers}. */
export interface TernHandlersProps {
  readonly table: dynamodb.ITableV2;
  readonly bucket: s3.IBucket;
  readonly cluster: ecs.ICluster;
  readonly subnets: readonly ec2.ISubnet[];
  readonly taskSecurityGroup: ec2.ISecurityGroup;
  readonly executionRole: iam.IRole;
  readonly taskRole: iam.IRole;
  /** Per-project task roles, by project: the agent runs a project's flows with its role only. @default none */
  readonly projectTaskRoles?: Readonly<Record<string, iam.IRole>>;
  readonly imageUri: string;
  /** The CPU architectures the runner image has, when known (ARM64 flows are refused without an arm64 variant). */
  readonly imageArchitectures?: ReadonlyArray<"X86_64" | "ARM64">;
  /**
   * The runner bundle tasks download at start (`TernRunner.bundle`): the functions get its
   * `s3://` URL and sha256 (`TERN_RUNNER_BUNDLE`, `TERN_RUNNER_BUNDLE_SHA256`) and may read that
   * one object, to presign a short-lived GET URL for each task they launch.
   * @default none (the image runs its own tern)
   */
  readonly runnerBundle?: Pick<RunnerBundle, "s3Url" | "objectArn" | "sha256">;
  readonly runLogs: logs.ILogGroup;
  /** Secrets Manager secret ARNs storages read at use (GitStorage's `auth.secretArn`): the functions load flows, so they may read them. @default [] */
  readonly storageSecrets?: readonly string[];
  /**
   * The repository of flow images (`FlowImages.repository`): the functions load flows, and a
   * Docker-stored flow's manifest is read from its image's flow layer, so they may read its
   * manifests and blobs (`ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer`, and
   * `ecr:GetAuthorizationToken`). @default none
   */
  readonly flowImages?: ecr.IRepository;
  readonly agentLabels?: readonly string[];
  readonly triggers?: readonly TriggerRuleInput[];
  readonly cloudEvents?: { readonly auth: "iam" | "hmac" };
  readonly logRetention: logs.RetentionDays;
  readonly alarmEmail?: string;
  /**
   * Reserved concurrency of every function, the agent included. None by default: Lambda keeps
   * 100 of the account's concurrency unreserved, and new accounts have a quota of 10, so any
   * reservation fails their first deploy. Without one, a tick that outlasts the minute overlaps
   * the next; that is safe, since each run is claimed by compare-and-swap (one of two overlapping
   * ticks takes it, the other skips it) and launched with the run's ECS `clientToken`.
   * @default none
   */
  readonly reservedConcurrency?: number;
}

/**
 * tern's Lambda handlers (packages/lambda), from the bundles the package's build made
 * (`assets/handlers/<name>`: esbuild, the AWS SDK left to the runtime; Node 22, ARM64): the
 * scheduled agent every minute, the task-state rule for this cluster's tern tasks, one
 * EventBridge rule per trigger, and optionally the CloudEvents function URL. Each function has a
 * dead-letter queue for failed asynchronous invocations and an alarm on errors; each may launch
 * only `tern-*` task definitions on this cluster and pass only the runner's two roles to ECS tasks.
 */
export class TernHandlers extends Construct {
  readonly functions: Readonly<Record<HandlerName, lambda.Function | undefined>>;
  readonly deadLetterQueue: sqs.Queue;
  readonly alarmTopic: sns.Topic;
  readonly cloudEventsUrl?: lambda.FunctionUrl;
  readonly cloudEventsSecret?: secretsmanager.Secret;
  /** Runs the CloudEvents function created, for the agent to launch (with CloudEvents only). */
  readonly launchQueue?: sqs.Queue;

  constructor(scope: Construct, id: string, props: TernHandlersProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.deadLetterQueue = new sqs.Queue(this, "DeadLetterQueue", {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.alarmTopic = new sns.Topic(this, "Alarms", { enforceSSL: true, masterKey: undefined });
    // A topic policy replaces SNS's default one: without this Allow, enforceSSL's Deny alone would
    // leave CloudWatch alarms unable to publish.
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [this.alarmTopic.topicArn],
        conditions: {
          StringEquals: { "aws:SourceAccount": stack.account },
          ArnLike: { "aws:SourceArn": `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*` },
        },
      }),
    );
    if (props.alarmEmail !== undefined)
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));

    const rules = props.triggers ?? [];
    const rulesJson = JSON.stringify(rules);
    // Small rule sets travel in the functions' environment; larger ones (Lambda keeps 4 KB of
    // environment in all) as an S3 asset the handlers read at cold start.
    let rulesAsset: s3assets.Asset | undefined;
    if (Buffer.byteLength(rulesJson) > INLINE_RULES_BYTES) {
      const dir = mkdtempSync(join(tmpdir(), "tern-rules-"));
      writeFileSync(join(dir, "rules.json"), rulesJson);
      rulesAsset = new s3assets.Asset(this, "TriggerRules", { path: join(dir, "rules.json") });
    }
    const rulesEnv: Record<string, string> =
      rulesAsset === undefined
        ? { TERN_TRIGGER_RULES: rulesJson }
        : { TERN_TRIGGER_RULES_URL: `s3://${rulesAsset.s3BucketName}/${rulesAsset.s3ObjectKey}` };
    if (props.cloudEvents?.auth === "hmac") {
      this.cloudEventsSecret = new secretsmanager.Secret(this, "CloudEventsKey", {
        description: "tern CloudEvents endpoint: the HMAC-SHA256 signing key (X-Tern-Signature)",
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
        removalPolicy: RemovalPolicy.DESTROY,
      });
    }
    const environment: Record<string, string> = {
      TERN_BACKEND: `dynamodb://${props.table.tableName}?region=${stack.region}`,
      TERN_AGENT_LABELS: (props.agentLabels ?? []).join(","),
      TERN_ECS_CLUSTER: props.cluster.clusterName,
      TERN_ECS_SUBNETS: props.subnets.map((s) => s.subnetId).join(","),
      TERN_ECS_SECURITY_GROUPS: props.taskSecurityGroup.securityGroupId,
      TERN_ECS_TASK_ROLE_ARN: props.taskRole.roleArn,
      TERN_ECS_EXECUTION_ROLE_ARN: props.executionRole.roleArn,
      TERN_RUNNER_IMAGE: props.imageUri,
      ...(props.imageArchitectures === undefined
        ? {}
        : { TERN_RUNNER_IMAGE_ARCHITECTURES: props.imageArchitectures.join(",") }),
      ...(props.runnerBundle === undefined
        ? {}
        : { TERN_RUNNER_BUNDLE: props.runnerBundle.s3Url, TERN_RUNNER_BUNDLE_SHA256: props.runnerBundle.sha256 }),
      TERN_LOG_GROUP: props.runLogs.logGroupName,
      // The guardrails (FargateTaskEnvironment enforces them at every launch): the network and
      // cluster above, no public IP, tern's families, the stack's tag on what is registered.
      TERN_ECS_ENFORCE_NETWORK: "true",
      TERN_ECS_FAMILY_PREFIX: FAMILY_PREFIX,
      TERN_ECS_STACK_TAG: stack.stackName,
      ...(Object.keys(props.projectTaskRoles ?? {}).length === 0
        ? {}
        : {
            TERN_ECS_PROJECT_TASK_ROLES: stack.toJsonString(
              Object.fromEntries(Object.entries(props.projectTaskRoles ?? {}).map(([p, role]) => [p, role.roleArn])),
            ),
          }),
      NODE_OPTIONS: "--enable-source-maps",
    };
    const make = (
      name: HandlerName,
      options: { timeout: Duration; reservedConcurrency?: number; env?: Record<string, string> },
    ) => {
      const logGroup = new logs.LogGroup(this, `${name}-logs`, {
        retention: props.logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // Its own role: write its own log group (not the managed basic role's logs on "*").
      const role = new iam.Role(this, `${name}-role`, {
        assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
        description: `tern ${name} handler`,
      });
      logGroup.grantWrite(role);
      const fn = new lambda.Function(this, `${name}-handler`, {
        role,
        code: handlerCode(name),
        handler: "index.handler",
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout: options.timeout,
        ...(options.reservedConcurrency === undefined
          ? {}
          : { reservedConcurrentExecutions: options.reservedConcurrency }),
        description: `tern ${name} handler`,
        environment: { ...environment, ...options.env },
        deadLetterQueue: this.deadLetterQueue,
        logGroup,
      });
      props.table.grantReadWriteData(fn);
      props.bucket.grantRead(fn);
      grantStorageSecrets(fn, props.storageSecrets);
      if (props.flowImages !== undefined) grantFlowImageRead(fn, props.flowImages);
      this.grantLaunch(fn, props);
      this.alarm(
        `${name}-errors`,
        fn.metricErrors({ period: Duration.minutes(5) }),
        1,
        `tern ${name} handler errors (see its log group)`,
      );
      return fn;
    };

    // A tick that cannot run now (throttled) is dropped, not queued for hours: the next one comes
    // a minute later. Overlapping ticks are safe (claims are compare-and-swap).
    const agent = make("agent", {
      timeout: Duration.seconds(90),
      reservedConcurrency: props.reservedConcurrency,
      env: { TERN_SAFETY_MARGIN_MS: "20000" },
    });
    agent.configureAsyncInvoke({ maxEventAge: Duration.minutes(2), retryAttempts: 0 });
    this.alarm(
      "agent-throttles",
      agent.metricThrottles({ period: Duration.minutes(15) }),
      3,
      "tern agent ticks throttled: the account's (or the reserved) concurrency was used up several times",
    );
    this.alarm(
      "dead-letters",
      this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
      1,
      "tern events or ticks that failed for good are in the dead-letter queue",
    );
    new events.Rule(this, "AgentSchedule", {
      description: "tern: the agent polls every minute",
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(agent, { deadLetterQueue: this.deadLetterQueue, retryAttempts: 0 })],
    });

    const taskState = make("task-state", {
      timeout: Duration.seconds(60),
      reservedConcurrency: props.reservedConcurrency,
    });
    new events.Rule(this, "TaskStateRule", {
      description: "tern: stopped tern tasks of this cluster update their runs at once",
      eventPattern: {
        source: ["aws.ecs"],
        detailType: ["ECS Task State Change"],
        detail: { clusterArn: [props.cluster.clusterArn], lastStatus: ["STOPPED"], startedBy: [{ prefix: "tern/" }] },
      },
      targets: [new targets.LambdaFunction(taskState, { deadLetterQueue: this.deadLetterQueue, retryAttempts: 4 })],
    });

    let trigger: lambda.Function | undefined;
    if (rules.length > 0) {
      trigger = make("trigger", {
        timeout: Duration.seconds(60),
        reservedConcurrency: props.reservedConcurrency,
        env: rulesEnv,
      });
      if (rulesAsset !== undefined) trigger.addToRolePolicy(readRules(rulesAsset));
      rules.forEach((rule, i) => {
        const name = rule.name ?? rule.flow;
        const eventRule = new events.Rule(this, `Trigger${i}`, {
          description: `tern trigger "${name}": starts a run of ${rule.flow}`,
          // The raw pattern below replaces this placeholder: EventBridge takes the rule's JSON as is.
          eventPattern: { source: ["tern.placeholder"] },
          targets: [
            new targets.LambdaFunction(trigger as lambda.Function, {
              deadLetterQueue: this.deadLetterQueue,
              retryAttempts: 4,
              // The handler is told which rule matched (a RuleMatchedEvent), so it does not match again.
              event: events.RuleTargetInput.fromObject({ rule: name, event: events.EventField.fromPath("$") }),
            }),
          ],
        });
        (eventRule.node.defaultChild as events.CfnRule).eventPattern = rule.pattern;
      });
    }

    let cloudEvents: lambda.Function | undefined;
    if (props.cloudEvents !== undefined) {
      // The CloudEvents function creates runs and answers 202; the agent launches them from this
      // queue, at most LAUNCH_QUEUE_MAX_CONCURRENCY invocations at once, so a flood of requests
      // never becomes a flood of launches, and a slow RunTask never holds a sender's request open.
      // A message is only a wake-up: the runs are in the table, and a run not launched from it
      // (out of time, throttled) is launched by the next tick, so nothing is redelivered.
      const launchQueue = new sqs.Queue(this, "LaunchQueue", {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        // At least the agent's timeout (90 s), as Lambda requires of an event source's queue.
        visibilityTimeout: Duration.seconds(120),
        retentionPeriod: Duration.hours(1),
        deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 3 },
      });
      this.launchQueue = launchQueue;
      agent.addEventSource(
        new lambdaEventSources.SqsEventSource(launchQueue, {
          batchSize: 10,
          maxConcurrency: LAUNCH_QUEUE_MAX_CONCURRENCY,
          reportBatchItemFailures: true,
        }),
      );
      cloudEvents = make("cloudevents", {
        timeout: Duration.seconds(30),
        reservedConcurrency: props.reservedConcurrency,
        env: {
          ...rulesEnv,
          TERN_CLOUDEVENTS_AUTH: props.cloudEvents.auth,
          TERN_LAUNCH_QUEUE_URL: launchQueue.queueUrl,
          ...(this.cloudEventsSecret === undefined
            ? {}
            : { TERN_CLOUDEVENTS_SECRET_ARN: this.cloudEventsSecret.secretArn }),
        },
      });
      this.cloudEventsSecret?.grantRead(cloudEvents);
      launchQueue.grantSendMessages(cloudEvents);
      if (rulesAsset !== undefined) cloudEvents.addToRolePolicy(readRules(rulesAsset));
      this.cloudEventsUrl = cloudEvents.addFunctionUrl({
        authType:
          props.cloudEvents.auth === "iam" ? lambda.FunctionUrlAuthType.AWS_IAM : lambda.FunctionUrlAuthType.NONE,
      });
    }
    this.functions = { agent, "task-state": taskState, trigger, cloudevents: cloudEvents };
  }

  /** An alarm to the alarm topic when `metric` reaches `threshold` in one period. */
  private alarm(id: string, metric: cloudwatch.IMetric, threshold: number, description: string): void {
    new cloudwatch.Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    }).addAlarmAction(new cloudwatchActions.SnsAction(this.alarmTopic));
  }

  /**
   * What launching a run needs, and no more: RunTask on `tern-*` task definitions on this
   * cluster; DescribeTasks and StopTask on this cluster's tasks; tagging only as part of
   * RunTask and RegisterTaskDefinition; reading the runner bundle's object (to presign it);
   * PassRole for the runner's two roles to ECS tasks only.
   * RegisterTaskDefinition, DescribeTaskDefinition and ListTaskDefinitions support no resource
   * scoping in IAM, so they take `*` (acknowledged in the stack with that reason).
   */
  private grantLaunch(fn: lambda.IFunction, props: TernHandlersProps): void {
    const stack = Stack.of(this);
    const taskDefinitions = stack.formatArn({
      service: "ecs",
      resource: "task-definition",
      resourceName: `${FAMILY_PREFIX}*:*`,
    });
    const tasks = stack.formatArn({ service: "ecs", resource: "task", resourceName: `${props.cluster.clusterName}/*` });
    const onCluster = { ArnEquals: { "ecs:cluster": props.cluster.clusterArn } };
    // Everything tern registers or runs carries the stack's tag (TERN_ECS_STACK_TAG).
    const stackTag = { [`aws:RequestTag/${STACK_TAG}`]: stack.stackName };
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["ecs:RunTask"],
        resources: [taskDefinitions],
        conditions: { ...onCluster, StringEquals: stackTag },
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["ecs:DescribeTasks", "ecs:StopTask"],
        resources: [tasks],
        conditions: onCluster,
      }),
    );
    // RegisterTaskDefinition takes no resource: its conditions are the request's tags, the
    // stack's (naming this stack) and the content hash tern tags every revision with.
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["ecs:RegisterTaskDefinition"],
        resources: ["*"],
        conditions: { StringEquals: stackTag, "ForAnyValue:StringEquals": { "aws:TagKeys": [HASH_TAG] } },
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"],
        resources: ["*"],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["ecs:TagResource"],
        resources: [taskDefinitions, tasks],
        conditions: { StringEquals: { "ecs:CreateAction": ["RunTask", "RegisterTaskDefinition"], ...stackTag } },
      }),
    );
    if (props.runnerBundle !== undefined) {
      // Presigning a GET of the runner bundle for a task: that object, nothing else of the assets bucket.
      fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ["s3:GetObject"], resources: [props.runnerBundle.objectArn] }),
      );
    }
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["iam:PassRole"],
        resources: [
          props.executionRole.roleArn,
          props.taskRole.roleArn,
          ...Object.values(props.projectTaskRoles ?? {}).map((role) => role.roleArn),
        ],
        conditions: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
      }),
    );
  }
}
