/**
 * The CDK app, synthesized offline (env-agnostic) with cdk-nag's AwsSolutions pack, and its
 * template checked resource by resource and statement by statement.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { INDEXES, TTL_ATTRIBUTE } from "@tern/backend-dynamodb";
import { App, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { beforeAll, describe, expect, it } from "vitest";
import { parseConfig, TernConfigError } from "../lib/config.js";
import { TernStack } from "../lib/stack.js";

const IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1";
const TRIGGER = {
  name: "uploads",
  flow: "ingest",
  pattern: { source: ["aws.s3"], "detail-type": ["Object Created"], detail: { bucket: { name: ["acme-uploads"] } } },
  parameters: { key: "$.detail.object.key" },
};

/** Actions AWS only grants on Resource "*" (no resource-level permissions). */
const STAR_ONLY_ACTIONS = new Set([
  "ecs:RegisterTaskDefinition",
  "ecs:DescribeTaskDefinition",
  "ecs:ListTaskDefinitions",
  "ecr:GetAuthorizationToken",
]);

function synth(config: Parameters<typeof parseConfig>[0]) {
  const app = new App();
  const stack = new TernStack(app, "Tern", { config: parseConfig(config, "test") });
  const report = new AwsSolutionsChecks(app).validateScope(stack);
  return { app, stack, template: Template.fromStack(stack), report };
}

type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: Record<string, unknown> };

/** Every statement of every identity policy in the template, with the policy's logical id. */
function statements(template: Template): Array<Statement & { policy: string }> {
  const out: Array<Statement & { policy: string }> = [];
  for (const [id, policy] of Object.entries(template.findResources("AWS::IAM::Policy"))) {
    for (const s of (policy.Properties.PolicyDocument.Statement as Statement[]) ?? []) out.push({ ...s, policy: id });
  }
  for (const [id, policy] of Object.entries(template.findResources("AWS::IAM::ManagedPolicy"))) {
    for (const st of (policy.Properties.PolicyDocument.Statement as Statement[]) ?? []) out.push({ ...st, policy: id });
  }
  for (const [id, role] of Object.entries(template.findResources("AWS::IAM::Role"))) {
    for (const p of (role.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>) ?? []) {
      for (const s of p.PolicyDocument.Statement) out.push({ ...s, policy: id });
    }
  }
  return out;
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

describe("TernStack with triggers and a CloudEvents endpoint", { timeout: 60_000 }, () => {
  let result: ReturnType<typeof synth>;
  beforeAll(() => {
    result = synth({
      runnerImage: { uri: IMAGE },
      reservedConcurrency: 5,
      secrets: ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:etl-db-AbCdEf"],
      taskRoleManagedPolicyArns: ["arn:aws:iam::123456789012:policy/acme-uploads-read"],
      triggers: [TRIGGER],
      cloudEvents: { auth: "hmac" },
      agentLabels: ["prod"],
    });
  });

  it("passes cdk-nag's AwsSolutions pack, and every acknowledgement names its reason", () => {
    expect(result.report.violations.map((v) => `${v.ruleName}: ${v.description}`)).toEqual([]);
    expect(result.report.success).toBe(true);
    const acknowledgements: Array<{ id: string; reason: string }> = [];
    const walk = (construct: IConstruct) => {
      for (const entry of construct.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        // Recorded as { "<rule id>": "<reason>" }.
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>))
          acknowledgements.push({ id, reason });
      }
      for (const child of construct.node.children) walk(child);
    };
    walk(result.stack);
    expect(acknowledgements.length).toBeGreaterThan(0);
    // cdk-nag findings are acknowledged as annotations (the others are CDK's own, about its constructs).
    const ours = acknowledgements.filter((a) => a.id.startsWith("Annotation::AwsSolutions-"));
    for (const ack of ours) expect(ack.reason.length, ack.id).toBeGreaterThan(40);
    // The wildcard resources acknowledged are the ones AWS requires or the table's and bucket's own.
    expect(
      new Set(ours.map((a) => a.id.replace("Annotation::", "").replace(/<[A-Za-z0-9]+(\.Arn)?>/g, "<id>"))),
    ).toEqual(
      new Set([
        "AwsSolutions-S1",
        "AwsSolutions-SMG4",
        "AwsSolutions-L1",
        "AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions-IAM5[Resource::<id>/*]",
        "AwsSolutions-IAM5[Resource::<id>/index/*]",
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "AwsSolutions-IAM5[Action::s3:GetBucket*]",
        "AwsSolutions-IAM5[Action::s3:List*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task-definition/tern-*:*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/<id>/*]",
      ]),
    );
  });

  it("keeps flows in an encrypted, private, TLS-only, versioned bucket with a lifecycle rule", () => {
    const t = result.template;
    t.hasResourceProperties("AWS::S3::Bucket", {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: { Status: "Enabled" },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 90 }, Status: "Enabled" }),
        ]),
      },
    });
    t.hasResourceProperties("AWS::S3::BucketPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });

  it("keeps state in an on-demand table with point-in-time recovery, TTL, the backend's indexes and deletion protection", () => {
    result.template.hasResourceProperties("AWS::DynamoDB::GlobalTable", {
      BillingMode: "PAY_PER_REQUEST",
      TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      GlobalSecondaryIndexes: Object.values(INDEXES).map((index) => Match.objectLike({ IndexName: index.name })),
      Replicas: [
        Match.objectLike({
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          DeletionProtectionEnabled: true,
        }),
      ],
    });
  });

  it("runs tasks on a Container Insights cluster, in private subnets, with a security group that only sends HTTPS", () => {
    const t = result.template;
    t.hasResourceProperties("AWS::ECS::Cluster", {
      ClusterSettings: [{ Name: "containerInsights", Value: "enabled" }],
    });
    t.resourceCountIs("AWS::EC2::NatGateway", 1);
    t.hasResourceProperties("AWS::EC2::SecurityGroup", {
      GroupDescription: Match.stringLikeRegexp("tern runner tasks"),
      SecurityGroupEgress: [Match.objectLike({ IpProtocol: "tcp", FromPort: 443, ToPort: 443 })],
    });
    const groups = t.findResources("AWS::EC2::SecurityGroup", {
      Properties: { GroupDescription: Match.stringLikeRegexp("tern runner tasks") },
    });
    expect(Object.values(groups)[0]?.Properties.SecurityGroupIngress).toBeUndefined();
    t.hasResourceProperties("AWS::Logs::LogGroup", { RetentionInDays: 30 });
    t.hasResourceProperties("AWS::EC2::FlowLog", { TrafficType: "REJECT" });
  });

  it("runs the handlers on Node 22 ARM64 with the reserved concurrency asked for, a dead-letter queue, their configuration and an alarm", () => {
    const t = result.template;
    const functions = t.findResources("AWS::Lambda::Function", {
      Properties: { Description: Match.stringLikeRegexp("^tern ") },
    });
    expect(Object.keys(functions)).toHaveLength(4);
    for (const fn of Object.values(functions)) {
      expect(fn.Properties).toMatchObject({
        Runtime: "nodejs22.x",
        Architectures: ["arm64"],
        Handler: "index.handler",
        DeadLetterConfig: { TargetArn: expect.anything() },
      });
      expect(fn.Properties.ReservedConcurrentExecutions).toBe(5);
      expect(Object.keys(fn.Properties.Environment.Variables)).toEqual(
        expect.arrayContaining([
          "TERN_BACKEND",
          "TERN_ECS_CLUSTER",
          "TERN_ECS_SUBNETS",
          "TERN_ECS_SECURITY_GROUPS",
          "TERN_ECS_TASK_ROLE_ARN",
          "TERN_ECS_EXECUTION_ROLE_ARN",
          "TERN_RUNNER_IMAGE",
          "TERN_LOG_GROUP",
        ]),
      );
    }
    t.hasResourceProperties("AWS::Lambda::Function", {
      Description: "tern agent handler",
      Timeout: 90,
      Environment: { Variables: Match.objectLike({ TERN_AGENT_LABELS: "prod", TERN_RUNNER_IMAGE: IMAGE }) },
    });
    t.hasResourceProperties("AWS::Lambda::Function", {
      Description: "tern trigger handler",
      Environment: { Variables: Match.objectLike({ TERN_TRIGGER_RULES: JSON.stringify([TRIGGER]) }) },
    });
    t.hasResourceProperties("AWS::SQS::Queue", { SqsManagedSseEnabled: true });
    // An error alarm per function, the agent's throttles, the dead-letter queue's depth.
    t.resourceCountIs("AWS::CloudWatch::Alarm", 6);
    t.hasResourceProperties("AWS::Lambda::EventInvokeConfig", {
      MaximumEventAgeInSeconds: 120,
      MaximumRetryAttempts: 0,
    });
    // Each function writes its own log group through its own role: no managed policy.
    const roles = t.findResources("AWS::IAM::Role", {
      Properties: { Description: Match.stringLikeRegexp("handler$") },
    });
    expect(Object.keys(roles)).toHaveLength(4);
    for (const role of Object.values(roles)) expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    t.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "Errors",
      Threshold: 1,
      AlarmActions: [Match.anyValue()],
    });
  });

  it("invokes the agent every minute, the task-state handler for this cluster's stopped tern tasks, and the trigger handler per rule", () => {
    const t = result.template;
    t.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(1 minute)", State: "ENABLED" });
    t.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: {
        source: ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        detail: { clusterArn: [Match.anyValue()], lastStatus: ["STOPPED"], startedBy: [{ prefix: "tern/" }] },
      },
    });
    t.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: TRIGGER.pattern,
      Targets: [Match.objectLike({ DeadLetterConfig: Match.anyValue() })],
    });
  });

  it("serves CloudEvents on a function URL with the HMAC key in Secrets Manager", () => {
    const t = result.template;
    t.hasResourceProperties("AWS::Lambda::Url", { AuthType: "NONE" });
    t.hasResourceProperties("AWS::SecretsManager::Secret", {
      GenerateSecretString: Match.objectLike({ PasswordLength: 48 }),
    });
    t.hasResourceProperties("AWS::Lambda::Function", {
      Description: "tern cloudevents handler",
      Environment: {
        Variables: Match.objectLike({ TERN_CLOUDEVENTS_AUTH: "hmac", TERN_CLOUDEVENTS_SECRET_ARN: Match.anyValue() }),
      },
    });
  });

  it("grants no wildcard action, and Resource * only to actions AWS does not scope", () => {
    const all = statements(result.template);
    expect(all.length).toBeGreaterThan(10);
    for (const s of all) {
      for (const action of actionsOf(s)) {
        expect(action, `${s.policy}`).not.toBe("*");
        expect(action, `${s.policy}`).not.toMatch(/^[a-z0-9-]+:\*$/);
      }
      if (resourcesOf(s).includes("*")) {
        for (const action of actionsOf(s))
          expect(STAR_ONLY_ACTIONS.has(action), `${action} on * in ${s.policy}`).toBe(true);
      }
    }
  });

  it("limits launching to tern's families on this cluster and passes only the runner's roles to ECS tasks", () => {
    const all = statements(result.template);
    const runTask = all.filter((s) => actionsOf(s).includes("ecs:RunTask"));
    expect(runTask.length).toBe(4);
    for (const s of runTask) {
      expect(actionsOf(s)).toEqual(["ecs:RunTask"]);
      expect(JSON.stringify(s.Resource)).toContain(":task-definition/tern-*:*");
      expect(s.Condition).toEqual({ ArnEquals: { "ecs:cluster": expect.anything() } });
    }
    for (const s of all.filter((x) => actionsOf(x).some((a) => a === "ecs:StopTask" || a === "ecs:DescribeTasks"))) {
      expect(JSON.stringify(s.Resource)).toMatch(/:task\//);
      expect(s.Condition).toEqual({ ArnEquals: { "ecs:cluster": expect.anything() } });
    }
    for (const s of all.filter((x) => actionsOf(x).includes("ecs:TagResource"))) {
      expect(s.Condition).toEqual({ StringEquals: { "ecs:CreateAction": ["RunTask", "RegisterTaskDefinition"] } });
    }
    const passRole = all.filter((s) => actionsOf(s).includes("iam:PassRole"));
    expect(passRole.length).toBe(4);
    for (const s of passRole) {
      expect(resourcesOf(s)).toHaveLength(2);
      expect(JSON.stringify(s.Resource)).toMatch(/RunnerExecutionRole.*RunnerTaskRole/);
      expect(s.Condition).toEqual({ StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } });
    }
    // Table and bucket access name their ARNs (and the table's indexes, the bucket's objects).
    for (const s of all.filter((x) => actionsOf(x).some((a) => a.startsWith("dynamodb:") || a.startsWith("s3:")))) {
      for (const resource of resourcesOf(s)) expect(JSON.stringify(resource)).toMatch(/State|Flows/);
    }
  });

  it("gives the execution role image pulls, its log group and nothing else; the task role the bucket and table", () => {
    const all = statements(result.template);
    const execution = all.filter((s) => s.policy.startsWith("RunnerExecutionRole"));
    expect(execution.flatMap(actionsOf).sort()).toEqual(
      [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
      ].sort(),
    );
    const task = all.filter((s) => s.policy.startsWith("RunnerTaskRole"));
    expect(task.flatMap(actionsOf).every((a) => a.startsWith("s3:") || a.startsWith("dynamodb:"))).toBe(true);
    expect(task.flatMap(actionsOf)).toEqual(
      expect.arrayContaining(["s3:GetObject*", "dynamodb:PutItem", "dynamodb:Query"]),
    );
    expect(task.flatMap(actionsOf)).not.toEqual(expect.arrayContaining(["s3:PutObject"]));
  });

  it("outputs what tern register needs in CI, with a managed policy for the CI role", () => {
    const outputs = result.template.findOutputs("*");
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining([
        "FlowBucketName",
        "StateTableName",
        "Region",
        "ClusterName",
        "TernBackend",
        "CloudEventsUrl",
        "CiPolicyArn",
      ]),
    );
    const ci = Object.values(result.template.findResources("AWS::IAM::ManagedPolicy"))[0]?.Properties.PolicyDocument
      .Statement as Statement[];
    expect(ci.map((st) => actionsOf(st))).toEqual([
      ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      ["s3:ListBucket"],
      expect.arrayContaining(["dynamodb:DescribeTable", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]),
    ]);
    for (const st of ci)
      for (const resource of resourcesOf(st)) expect(JSON.stringify(resource)).toMatch(/Flows|State/);
  });

  it("lets the execution role read only the secrets named, and adds the task role's extra policies", () => {
    const all = statements(result.template);
    const secrets = all.filter(
      (st) => actionsOf(st).includes("secretsmanager:GetSecretValue") && st.policy.startsWith("RunnerExecutionRole"),
    );
    expect(secrets).toEqual([
      expect.objectContaining({ Resource: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:etl-db-AbCdEf" }),
    ]);
    result.template.hasResourceProperties("AWS::IAM::Role", {
      Description: Match.stringLikeRegexp("tern runner tasks: read flows"),
      ManagedPolicyArns: ["arn:aws:iam::123456789012:policy/acme-uploads-read"],
    });
  });
});

describe("TernStack on a new AWS account (defaults)", { timeout: 60_000 }, () => {
  let template: Template;
  beforeAll(() => {
    template = synth({ runnerImage: { uri: IMAGE }, triggers: [TRIGGER], cloudEvents: { auth: "iam" } }).template;
  });

  it("reserves no concurrency (new accounts have a quota of 10 and must keep 10 unreserved)", () => {
    const functions = Object.values(template.findResources("AWS::Lambda::Function"));
    expect(functions.filter((fn) => String(fn.Properties.Description).startsWith("tern "))).toHaveLength(4);
    for (const fn of functions) expect(fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  it("lets CloudWatch alarms of this account publish to the alarm topic, whose policy also denies plain HTTP", () => {
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
          Match.objectLike({
            Effect: "Allow",
            Principal: { Service: "cloudwatch.amazonaws.com" },
            Action: "sns:Publish",
            Condition: {
              StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } },
              ArnLike: { "aws:SourceArn": Match.anyValue() },
            },
          }),
        ]),
      },
    });
  });

  it("gives the cluster the FARGATE and FARGATE_SPOT capacity providers", () => {
    template.hasResourceProperties("AWS::ECS::ClusterCapacityProviderAssociations", {
      CapacityProviders: ["FARGATE", "FARGATE_SPOT"],
    });
  });
});

describe("TernStack variants", { timeout: 60_000 }, () => {
  it("builds the runner image from env-fargate's Dockerfile by default, and uses VPC endpoints instead of NAT when asked", () => {
    const { template, report } = synth({ vpc: { create: { endpoints: true } } });
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    template.resourceCountIs("AWS::EC2::NatGateway", 0);
    const endpoints = Object.values(template.findResources("AWS::EC2::VPCEndpoint")).map((e) =>
      JSON.stringify(e.Properties.ServiceName),
    );
    for (const service of ["s3", "dynamodb", "ecr.api", "ecr.dkr", "logs", "secretsmanager"]) {
      expect(
        endpoints.some((name) => name.includes(`.${service}`)),
        service,
      ).toBe(true);
    }
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: "tern agent handler",
      Environment: {
        Variables: Match.objectLike({
          TERN_RUNNER_IMAGE: Match.objectLike({ "Fn::Sub": Match.stringLikeRegexp("container-assets") }),
        }),
      },
    });
  });

  it("imports an existing VPC and uses IAM auth for CloudEvents when asked", () => {
    const { template, report } = synth({
      runnerImage: { uri: IMAGE },
      vpc: {
        import: {
          vpcId: "vpc-0123456789abcdef0",
          availabilityZones: ["eu-west-1a"],
          privateSubnetIds: ["subnet-0123456789abcdef0"],
        },
      },
      cloudEvents: { auth: "iam" },
    });
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    template.resourceCountIs("AWS::EC2::VPC", 0);
    template.hasResourceProperties("AWS::Lambda::Url", { AuthType: "AWS_IAM" });
    template.resourceCountIs("AWS::SecretsManager::Secret", 0);
    template.hasResourceProperties("AWS::Lambda::Function", {
      Description: "tern agent handler",
      Environment: { Variables: Match.objectLike({ TERN_ECS_SUBNETS: "subnet-0123456789abcdef0" }) },
    });
  });

  it("ships many trigger rules as an S3 asset the handlers may read (that object only) instead of an environment variable", () => {
    const triggers = Array.from({ length: 30 }, (_, i) => ({
      name: `rule-${i}`,
      flow: "ingest",
      pattern: { source: ["aws.s3"], detail: { bucket: { name: [`bucket-${i}-with-a-long-name`] } } },
    }));
    const { template, report } = synth({ runnerImage: { uri: IMAGE }, triggers, cloudEvents: { auth: "iam" } });
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    const trigger = Object.values(
      template.findResources("AWS::Lambda::Function", { Properties: { Description: "tern trigger handler" } }),
    )[0];
    const variables = trigger?.Properties.Environment.Variables as Record<string, unknown>;
    expect(variables.TERN_TRIGGER_RULES).toBeUndefined();
    expect(JSON.stringify(variables.TERN_TRIGGER_RULES_URL)).toMatch(/s3:\/\/.*\.json/);
    const reads = statements(template).filter((st) => JSON.stringify(st.Resource).includes(".json"));
    expect(reads).toHaveLength(2);
    for (const st of reads) expect(actionsOf(st)).toEqual(["s3:GetObject"]);
    template.resourceCountIs("AWS::Events::Rule", 2 + 30);
  });

  it("refuses a configuration that cannot work, naming each problem", () => {
    expect(() =>
      parseConfig({ vpc: { create: { maxAzs: 9 } }, logRetentionDays: 10, secrets: ["my-secret"], extra: 1 }, "test"),
    ).toThrow(TernConfigError);
    let message = "";
    try {
      parseConfig(
        { logRetentionDays: 10, secrets: ["my-secret"], triggers: [{ flow: "f", pattern: {} }] },
        "tern.config.json",
      );
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/tern\.config\.json/);
    expect(message).toMatch(/logRetentionDays: one of 1, 3, 5/);
    expect(message).toMatch(/secrets\.0: complete Secrets Manager secret ARNs/);
    expect(() => parseConfig({ triggers: [{ flow: "f", pattern: {} }] }, "x")).toThrow(
      /event pattern is an empty object/,
    );
  });
});

describe("cdk synth (the CLI, as a user runs it)", { timeout: 120_000 }, () => {
  it("synthesizes the app offline with cdk-nag and CloudFormation validation, without a finding", async () => {
    const out = await mkdtemp(join(tmpdir(), "tern-cdk-synth-"));
    try {
      const infra = join(dirname(fileURLToPath(import.meta.url)), "..");
      const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
        execFile(
          join(infra, "node_modules", ".bin", "cdk"),
          [
            "synth",
            "--quiet",
            "--output",
            out,
            "--context",
            `tern=${JSON.stringify({ triggers: [TRIGGER], cloudEvents: { auth: "iam" } })}`,
          ],
          {
            cwd: infra,
            env: {
              ...process.env,
              NODE_OPTIONS: "",
              CDK_DISABLE_VERSION_CHECK: "true",
              CDK_DISABLE_CLI_TELEMETRY: "true",
            },
            timeout: 110_000,
          },
          (error, stdout, stderr) =>
            resolve({ code: error === null ? 0 : Number(error.code ?? 1), output: `${stdout}${stderr}` }),
        );
      });
      expect(code, output).toBe(0);
      expect(output).not.toMatch(/\b(ERROR|WARNING)\b/);
      const report = JSON.parse(
        await readFile(join(out, "validation-report.json"), "utf8").catch(() => '{"pluginReports":[]}'),
      ) as {
        pluginReports: Array<{ violations: unknown[] }>;
      };
      expect(report.pluginReports.flatMap((p) => p.violations)).toEqual([]);
      const template = JSON.parse(await readFile(join(out, "Tern.template.json"), "utf8")) as {
        Resources: Record<string, { Type: string }>;
      };
      expect(
        Object.values(template.Resources).filter((r) => r.Type === "AWS::Lambda::Function").length,
      ).toBeGreaterThanOrEqual(4);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
