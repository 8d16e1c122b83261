/**
 * The CDK app, synthesized offline (env-agnostic) with cdk-nag's AwsSolutions pack, and its
 * template checked resource by resource and statement by statement.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { INDEXES, TTL_ATTRIBUTE } from "@tern/backend-dynamodb";
import { App, type CfnElement, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { DockerImageAsset } from "aws-cdk-lib/aws-ecr-assets";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig, type TernConfig, TernConfigError } from "../lib/config.js";
import { RUNNER_BUNDLE, STOCK_NODE_IMAGE } from "../lib/runner-image.js";
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

/** The agent function's environment variables. */
function agentEnvironment(template: Template): Record<string, unknown> {
  const agent = Object.values(
    template.findResources("AWS::Lambda::Function", { Properties: { Description: "tern agent handler" } }),
  )[0];
  return agent?.Properties.Environment.Variables as Record<string, unknown>;
}

/** The asset manifest `app.synth()` wrote for the stack (what `cdk deploy` publishes). */
function assetManifest(app: App): {
  files: Record<string, { source: { path: string }; destinations: Record<string, { objectKey: string }> }>;
  dockerImages: Record<string, { source: { directory: string } }>;
} {
  const assembly = app.synth();
  return JSON.parse(readFileSync(join(assembly.directory, "Tern.assets.json"), "utf8"));
}

const GIT_TOKEN_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:git-token-AbCdEf";

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

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
      Targets: [
        Match.objectLike({
          DeadLetterConfig: Match.anyValue(),
          // The handler is told which rule matched, so it starts that rule's run without matching again.
          InputTransformer: { InputPathsMap: { f1: "$" }, InputTemplate: '{"rule":"uploads","event":<f1>}' },
        }),
      ],
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
      expect(s.Condition).toEqual({
        ArnEquals: { "ecs:cluster": expect.anything() },
        StringEquals: { "aws:RequestTag/tern:stack": "Tern" },
      });
    }
    for (const s of all.filter((x) => actionsOf(x).some((a) => a === "ecs:StopTask" || a === "ecs:DescribeTasks"))) {
      expect(JSON.stringify(s.Resource)).toMatch(/:task\//);
      expect(s.Condition).toEqual({ ArnEquals: { "ecs:cluster": expect.anything() } });
    }
    for (const s of all.filter((x) => actionsOf(x).includes("ecs:TagResource"))) {
      expect(s.Condition).toEqual({
        StringEquals: {
          "ecs:CreateAction": ["RunTask", "RegisterTaskDefinition"],
          "aws:RequestTag/tern:stack": "Tern",
        },
      });
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
    // Pulls from two repositories (the runner image's and the flow images'), one ECR login.
    expect([...new Set(execution.flatMap(actionsOf))].sort()).toEqual(
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
    expect(task.flatMap(actionsOf)).toEqual(expect.arrayContaining(["s3:GetObject*", "dynamodb:Query"]));
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
        "FlowImageRepositoryUri",
      ]),
    );
    const ci = Object.values(result.template.findResources("AWS::IAM::ManagedPolicy"))[0]?.Properties.PolicyDocument
      .Statement as Statement[];
    expect(ci.map((st) => actionsOf(st))).toEqual([
      ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      ["s3:ListBucket"],
      expect.arrayContaining(["dynamodb:DescribeTable", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]),
      ["logs:GetLogEvents"],
      ["ecr:GetAuthorizationToken"],
      expect.arrayContaining(["ecr:PutImage", "ecr:CompleteLayerUpload", "ecr:BatchGetImage"]),
    ]);
    for (const st of ci) {
      // The ECR login takes no resource; everything else names the stack's own.
      if (actionsOf(st).includes("ecr:GetAuthorizationToken")) continue;
      for (const resource of resourcesOf(st))
        expect(JSON.stringify(resource)).toMatch(/Flows|FlowImages|State|RunLogs/);
    }
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

describe("the stack's guardrails: what a flow's manifest cannot escape", { timeout: 60_000 }, () => {
  let result: ReturnType<typeof synth>;
  const BILLING_POLICY = "arn:aws:iam::123456789012:policy/billing-exports";
  beforeAll(() => {
    result = synth({
      runnerImage: { uri: IMAGE },
      triggers: [TRIGGER],
      cloudEvents: { auth: "iam" },
      projectTaskRoles: { billing: { managedPolicyArns: [BILLING_POLICY] } },
    });
  });

  const launching = (template: Template) =>
    Object.values(template.findResources("AWS::Lambda::Function")).filter((f) =>
      /^tern (agent|task-state|trigger|cloudevents) handler$/.test(f.Properties.Description),
    );

  it("passes cdk-nag with per-project task roles", () => {
    expect(result.report.violations.map((v) => `${v.ruleName}: ${v.description}`)).toEqual([]);
  });

  it("sets the guardrails on every launching function: the network and cluster enforced, the family prefix, the stack's tag", () => {
    const functions = launching(result.template);
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      const env = fn.Properties.Environment.Variables as Record<string, unknown>;
      expect(env).toMatchObject({
        TERN_ECS_ENFORCE_NETWORK: "true",
        TERN_ECS_FAMILY_PREFIX: "tern-",
        TERN_ECS_STACK_TAG: "Tern",
        TERN_ECS_SUBNETS: expect.anything(),
        TERN_ECS_SECURITY_GROUPS: expect.anything(),
        TERN_ECS_CLUSTER: expect.anything(),
      });
      const roles = JSON.stringify(result.stack.resolve(env.TERN_ECS_PROJECT_TASK_ROLES));
      expect(roles).toMatch(/billing/);
      expect(roles).toMatch(/RunnerTaskRolebilling/);
    }
  });

  it("lets RegisterTaskDefinition (Resource *) only with the stack's tag and the content-hash tag", () => {
    const all = statements(result.template);
    const register = all.filter((s) => actionsOf(s).includes("ecs:RegisterTaskDefinition"));
    expect(register).toHaveLength(4);
    for (const s of register) {
      expect(actionsOf(s)).toEqual(["ecs:RegisterTaskDefinition"]);
      expect(s.Resource).toBe("*");
      expect(s.Condition).toEqual({
        StringEquals: { "aws:RequestTag/tern:stack": "Tern" },
        "ForAnyValue:StringEquals": { "aws:TagKeys": ["tern:definition-hash"] },
      });
    }
    // The reads that take "*" carry no write with them.
    for (const s of all.filter((x) => actionsOf(x).includes("ecs:DescribeTaskDefinition"))) {
      expect(actionsOf(s).sort()).toEqual(["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"]);
    }
  });

  it("gives runners only what a runner does on the state table: runs' partitions and flow versions, no Scan, no Delete, no index", () => {
    const all = statements(result.template);
    const roles = ["RunnerTaskRole", "RunnerTaskRolebilling"];
    for (const prefix of roles) {
      const dynamo = all.filter(
        (s) =>
          s.policy.startsWith(prefix) &&
          (prefix !== "RunnerTaskRole" || !s.policy.startsWith("RunnerTaskRolebilling")) &&
          actionsOf(s).some((a) => a.startsWith("dynamodb:")),
      );
      const actions = dynamo.flatMap(actionsOf);
      expect(new Set(actions), prefix).toEqual(
        new Set([
          "dynamodb:DescribeTable",
          "dynamodb:GetItem",
          "dynamodb:Query",
          "dynamodb:UpdateItem",
          "dynamodb:BatchWriteItem",
        ]),
      );
      for (const action of actions) expect(action).not.toMatch(/Scan|Delete|PutItem|BatchGet|PartiQL|Transact/);
      for (const s of dynamo) {
        // The table itself, never its indexes.
        expect(JSON.stringify(s.Resource)).not.toContain("index");
        if (actionsOf(s).includes("dynamodb:DescribeTable")) {
          expect(actionsOf(s)).toEqual(["dynamodb:DescribeTable"]);
          continue;
        }
        const leading = (s.Condition?.["ForAllValues:StringLike"] as Record<string, unknown>)?.["dynamodb:LeadingKeys"];
        if (actionsOf(s).length > 1) expect(leading).toEqual(["RUN#*"]);
        else expect(leading).toEqual([prefix === "RunnerTaskRole" ? "FLOW#*" : "FLOW#billing#*"]);
      }
    }
  });

  it("gives a project its own task role with its policies, and passes only the runner's roles to ECS", () => {
    const roles = result.template.findResources("AWS::IAM::Role", {
      Properties: { Description: "tern runner tasks of project billing: read flows, read and write runs" },
    });
    const [id, role] = Object.entries(roles)[0] ?? [];
    expect(id).toMatch(/^RunnerTaskRolebilling/);
    expect(JSON.stringify(role?.Properties.ManagedPolicyArns)).toContain(BILLING_POLICY);
    const passRole = statements(result.template).filter((s) => actionsOf(s).includes("iam:PassRole"));
    for (const s of passRole) {
      expect(resourcesOf(s)).toHaveLength(3);
      expect(JSON.stringify(s.Resource)).toMatch(/RunnerExecutionRole.*RunnerTaskRole.*RunnerTaskRolebilling/);
    }
  });

  it("tells the functions the runner image's architectures when it knows them: both for the stock image, unknown for a URI", () => {
    for (const fn of launching(result.template))
      expect(fn.Properties.Environment.Variables.TERN_RUNNER_IMAGE_ARCHITECTURES).toBeUndefined();
    const stock = synth({}).template;
    for (const fn of launching(stock))
      expect(fn.Properties.Environment.Variables.TERN_RUNNER_IMAGE_ARCHITECTURES).toBe("X86_64,ARM64");
  });

  it("refuses per-project task roles it cannot make, naming the problem", () => {
    expect(() => parseConfig({ projectTaskRoles: { "bad project": {} } }, "test")).toThrow(
      /projectTaskRoles.bad project: "bad project" is not a project name a role can be made for/,
    );
    expect(() => parseConfig({ projectTaskRoles: { billing: { managedPolicyArns: ["nope"] } } }, "test")).toThrow(
      /projectTaskRoles.billing.managedPolicyArns.0: IAM managed policy ARNs/,
    );
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
  it("uses VPC endpoints instead of NAT when asked, and tasks still reach the stock image through the pull-through cache", () => {
    const { template, report } = synth({ vpc: { create: { endpoints: true } } });
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    template.resourceCountIs("AWS::EC2::NatGateway", 0);
    const endpoints = Object.values(template.findResources("AWS::EC2::VPCEndpoint")).map((e) =>
      JSON.stringify(e.Properties.ServiceName),
    );
    // ECR's API and registry endpoints (and S3's, where image layers are) serve the cached image.
    for (const service of ["s3", "dynamodb", "ecr.api", "ecr.dkr", "logs", "secretsmanager"]) {
      expect(
        endpoints.some((name) => name.includes(`.${service}`)),
        service,
      ).toBe(true);
    }
    template.resourceCountIs("AWS::ECR::PullThroughCacheRule", 1);
    const image = agentEnvironment(template).TERN_RUNNER_IMAGE;
    expect(JSON.stringify(image)).toContain(`/tern-ecr-public/docker/library/node:${STOCK_NODE_IMAGE.tag}`);
    expect(JSON.stringify(image)).toContain(".dkr.ecr.");
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

  it("checks the config a JavaScript app passes to TernStack, naming the wrong key and type", () => {
    const config = { agentLabels: "prod", logRetentionDayz: 30 } as unknown as TernConfig;
    expect(() => new TernStack(new App(), "Bad", { config })).toThrow(TernConfigError);
    expect(() => new TernStack(new App(), "Bad", { config })).toThrow(
      /TernStack "Bad" props\.config[\s\S]*agentLabels: Invalid input: expected array, received string[\s\S]*Unrecognized key: "logRetentionDayz"/,
    );
  });
});

describe("new TernStack(app, id, { env }) with nothing else: the stock image and the runner bundle, no Docker", {
  timeout: 60_000,
}, () => {
  const ENV = { account: "123456789012", region: "eu-west-1" };
  let app: App;
  let stack: TernStack;
  let template: Template;
  let outdir: string;
  beforeAll(async () => {
    outdir = await mkdtemp(join(tmpdir(), "tern-default-stack-"));
    app = new App({ outdir });
    stack = new TernStack(app, "Tern", { env: ENV });
    template = Template.fromStack(stack);
  });
  afterAll(async () => {
    await rm(outdir, { recursive: true, force: true });
  });

  it("has no Docker image asset: the cloud assembly publishes files only", () => {
    const manifest = assetManifest(app);
    expect(manifest.dockerImages).toEqual({});
    // The two handlers' code, the runner bundle and the template.
    expect(Object.values(manifest.files).filter((f) => f.source.path.endsWith(".mjs"))).toHaveLength(1);
    expect(Object.keys(manifest.files)).toHaveLength(4);
    expect(stack.node.findAll().filter((c) => c instanceof DockerImageAsset)).toEqual([]);
  });

  it("passes cdk-nag with no acknowledgement beyond the existing ones", () => {
    const report = new AwsSolutionsChecks(app).validateScope(stack);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.description}`)).toEqual([]);
  });

  it("mirrors ECR Public with a pull-through cache rule and runs the pinned Node.js image from this account's registry", () => {
    template.resourceCountIs("AWS::ECR::PullThroughCacheRule", 1);
    template.hasResourceProperties("AWS::ECR::PullThroughCacheRule", {
      EcrRepositoryPrefix: "tern-ecr-public",
      UpstreamRegistry: "ecr-public",
      UpstreamRegistryUrl: "public.ecr.aws",
    });
    expect(stack.resolve(stack.runner.imageUri)).toEqual({
      "Fn::Join": [
        "",
        [
          "123456789012.dkr.ecr.eu-west-1.",
          { Ref: "AWS::URLSuffix" },
          `/tern-ecr-public/docker/library/node:${STOCK_NODE_IMAGE.tag}`,
        ],
      ],
    });
    expect(agentEnvironment(template).TERN_RUNNER_IMAGE).toEqual(stack.resolve(stack.runner.imageUri));
    expect(STOCK_NODE_IMAGE.tag).toMatch(/^22\.\d+\.\d+-bookworm-slim$/);
    expect(STOCK_NODE_IMAGE.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("lets the execution role pull, create and import that one cached repository, pull flow images, and nothing else of ECR", () => {
    const execution = statements(template).filter((s) => s.policy.startsWith("RunnerExecutionRole"));
    const ecrStatements = execution.filter((s) => actionsOf(s).some((a) => a.startsWith("ecr:")));
    expect(
      ecrStatements.map((s) => ({ actions: [...actionsOf(s)].sort(), resource: stack.resolve(s.Resource) })),
    ).toEqual([
      {
        actions: [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:BatchImportUpstreamImage",
          "ecr:CreateRepository",
          "ecr:GetDownloadUrlForLayer",
        ],
        resource: {
          "Fn::Join": [
            "",
            [
              "arn:",
              { Ref: "AWS::Partition" },
              ":ecr:eu-west-1:123456789012:repository/tern-ecr-public/docker/library/node",
            ],
          ],
        },
      },
      { actions: ["ecr:GetAuthorizationToken"], resource: "*" },
      {
        actions: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        resource: {
          "Fn::GetAtt": [stack.getLogicalId(stack.flowImages.repository.node.defaultChild as CfnElement), "Arn"],
        },
      },
    ]);
  });

  it("gives every launching function the runner bundle's S3 asset and sha256, and GetObject on exactly that object", () => {
    const manifest = assetManifest(app);
    const [hash, entry] = Object.entries(manifest.files).find(([, f]) => f.source.path.endsWith(".mjs")) ?? [];
    expect(hash).toBeDefined();
    const objectKey = Object.values(entry?.destinations ?? {})[0]?.objectKey;
    const bucket = "cdk-hnb659fds-assets-123456789012-eu-west-1";
    const built = readFileSync(RUNNER_BUNDLE);
    // The staged copy that cdk deploy uploads is the file the build wrote, and the sha256 is its own.
    const staged = readFileSync(join(outdir, entry?.source.path ?? ""));
    expect(sha256(staged)).toBe(sha256(built));
    expect(stack.runner.bundle?.sha256).toBe(sha256(built));
    const functions = Object.values(
      template.findResources("AWS::Lambda::Function", {
        Properties: { Description: Match.stringLikeRegexp("^tern ") },
      }),
    );
    expect(functions).toHaveLength(2); // agent and task-state: no triggers, no CloudEvents here
    for (const fn of functions) {
      expect(fn.Properties.Environment.Variables).toMatchObject({
        TERN_RUNNER_BUNDLE: `s3://${bucket}/${objectKey}`,
        TERN_RUNNER_BUNDLE_SHA256: sha256(built),
      });
    }
    const reads = statements(template).filter((s) => JSON.stringify(s.Resource).includes(String(objectKey)));
    expect(reads.map((s) => s.policy.replace(/[0-9A-F]{8}$/, "")).sort()).toEqual([
      "Handlersagentrole" + "DefaultPolicy",
      "Handlerstaskstaterole" + "DefaultPolicy",
    ]);
    for (const s of reads) {
      expect(actionsOf(s)).toEqual(["s3:GetObject"]);
      expect(stack.resolve(s.Resource)).toEqual({
        "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, `:s3:::${bucket}/${objectKey}`]],
      });
    }
    // The task itself does not read the assets bucket: the agent hands it a presigned URL.
    const task = statements(template).filter((s) => s.policy.startsWith("RunnerTaskRole"));
    expect(JSON.stringify(task)).not.toContain(bucket);
  });
});

describe("runner images other than the stock one", { timeout: 60_000 }, () => {
  it('{ uri }: runs the image\'s own tern (no runner bundle, no cache rule) unless runner is "bundle"', () => {
    const own = synth({ runnerImage: { uri: IMAGE } }).template;
    own.resourceCountIs("AWS::ECR::PullThroughCacheRule", 0);
    expect(agentEnvironment(own)).toMatchObject({ TERN_RUNNER_IMAGE: IMAGE });
    expect(agentEnvironment(own).TERN_RUNNER_BUNDLE).toBeUndefined();
    expect(JSON.stringify(statements(own))).not.toContain(".mjs");

    const { template, report } = synth({ runnerImage: { uri: IMAGE }, runner: "bundle" });
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    expect(agentEnvironment(template)).toMatchObject({
      TERN_RUNNER_IMAGE: IMAGE,
      TERN_RUNNER_BUNDLE: expect.anything(),
      TERN_RUNNER_BUNDLE_SHA256: sha256(readFileSync(RUNNER_BUNDLE)),
    });
    template.resourceCountIs("AWS::ECR::PullThroughCacheRule", 0);
  });

  it("{ stock } options: another prefix and an existing rule, or a pull by digest", () => {
    const shared = synth({ runnerImage: { stock: { cachePrefix: "acme/ecr-public", createCacheRule: false } } });
    shared.template.resourceCountIs("AWS::ECR::PullThroughCacheRule", 0);
    expect(JSON.stringify(agentEnvironment(shared.template).TERN_RUNNER_IMAGE)).toContain(
      `/acme/ecr-public/docker/library/node:${STOCK_NODE_IMAGE.tag}`,
    );
    expect(JSON.stringify(statements(shared.template))).toContain("repository/acme/ecr-public/docker/library/node");
    const pinned = synth({ runnerImage: { stock: { digest: STOCK_NODE_IMAGE.digest } } });
    expect(JSON.stringify(agentEnvironment(pinned.template).TERN_RUNNER_IMAGE)).toContain(
      `/tern-ecr-public/docker/library/node@${STOCK_NODE_IMAGE.digest}`,
    );
  });

  it("{ build }: a Docker image asset of the allow-listed context only, built at deploy (not at synth)", async () => {
    const context = await mkdtemp(join(tmpdir(), "tern-build-context-"));
    const outdir = await mkdtemp(join(tmpdir(), "tern-build-out-"));
    try {
      await mkdir(join(context, "dist"));
      await mkdir(join(context, "secrets"));
      await writeFile(join(context, "runner.Dockerfile"), "FROM node:22-bookworm-slim\nCOPY dist /opt/tern\n");
      await writeFile(join(context, "dist", "tern.mjs"), "export {};\n");
      await writeFile(join(context, "secrets", "key.pem"), "not for the image\n");
      await writeFile(join(context, "package.json"), "{}\n");
      const app = new App({ outdir });
      const stack = new TernStack(app, "Tern", {
        config: parseConfig(
          { runnerImage: { build: { directory: context, file: "runner.Dockerfile", include: ["dist"] } } },
          "test",
        ),
      });
      const manifest = assetManifest(app);
      const images = Object.values(manifest.dockerImages);
      expect(images).toHaveLength(1);
      const staged = join(outdir, images[0]?.source.directory ?? "");
      expect(readdirSync(staged).sort()).toEqual(["dist", "runner.Dockerfile"]);
      expect(readdirSync(join(staged, "dist"))).toEqual(["tern.mjs"]);
      const template = Template.fromStack(stack);
      template.resourceCountIs("AWS::ECR::PullThroughCacheRule", 0);
      expect(JSON.stringify(agentEnvironment(template).TERN_RUNNER_IMAGE)).toContain("container-assets");
      expect(agentEnvironment(template).TERN_RUNNER_BUNDLE).toBeUndefined();
      expect(
        () =>
          new TernStack(new App(), "Tern", {
            config: parseConfig({ runnerImage: { build: { directory: join(context, "nowhere") } } }, "test"),
          }),
      ).toThrow(`${join(context, "nowhere", "Dockerfile")} does not exist`);
    } finally {
      await rm(context, { recursive: true, force: true });
      await rm(outdir, { recursive: true, force: true });
    }
  });

  it('"build": this repository\'s Dockerfile, as before, when asked', () => {
    const app = new App();
    const stack = new TernStack(app, "Tern", { config: parseConfig({ runnerImage: "build" }, "test") });
    const manifest = assetManifest(app);
    expect(Object.values(manifest.dockerImages)).toHaveLength(1);
    const report = new AwsSolutionsChecks(app).validateScope(stack);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    expect(stack.node.findAll().filter((c) => c instanceof DockerImageAsset)).toHaveLength(1);
  });

  it("refuses runner images and runners that cannot work, naming the value and the fix", () => {
    const problems = (runnerImage: unknown, runner?: unknown) => {
      try {
        parseConfig({ runnerImage, ...(runner === undefined ? {} : { runner }) }, "tern.config.json");
      } catch (error) {
        expect(error).toBeInstanceOf(TernConfigError);
        return (error as Error).message;
      }
      return "";
    };
    expect(problems("docker")).toMatch(/runnerImage: "docker" is not a runner image: use "stock" \(the default\)/);
    expect(problems({ image: "node" })).toMatch(/runnerImage: "image" is not a runner image form: use "stock"/);
    expect(problems({ uri: "has spaces in it" })).toMatch(/runnerImage\.uri: "has spaces in it" is not an image URI/);
    expect(problems({ stock: { cachePrefix: "X", digest: "sha256:abc", tagg: "1" } })).toMatch(
      /runnerImage\.stock\.tagg: unknown option "tagg"[\s\S]*cachePrefix "X" is not an ECR repository prefix[\s\S]*digest "sha256:abc" is not "sha256:" and 64/,
    );
    expect(problems({ build: { file: "Dockerfile" } })).toMatch(
      /runnerImage\.build\.directory: the Docker build context/,
    );
    expect(problems({ build: { directory: ".", include: "dist" } })).toMatch(
      /runnerImage\.build\.include: paths inside/,
    );
    expect(problems("stock", "docker")).toMatch(/runner: "docker" is neither "bundle"/);
    expect(problems({ stock: { tag: "22.23.1-bookworm-slim" } }, "image")).toBe("");
  });
});

describe("cdk synth (the CLI, as a user runs it)", { timeout: 120_000 }, () => {
  it("synthesizes the app offline with cdk-nag and CloudFormation validation, without a finding and without docker", async () => {
    const out = await mkdtemp(join(tmpdir(), "tern-cdk-synth-"));
    // A PATH with node and nothing else: no docker to run, whatever the synth (or its build step) tries.
    const bin = await mkdtemp(join(tmpdir(), "tern-no-docker-"));
    await symlink(process.execPath, join(bin, "node"));
    try {
      const infra = join(dirname(fileURLToPath(import.meta.url)), "..");
      const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            join(infra, "node_modules", "aws-cdk", "bin", "cdk"),
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
              PATH: bin,
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
      // The default runner image is the stock one: nothing for Docker to build or push at deploy.
      const assets = JSON.parse(await readFile(join(out, "Tern.assets.json"), "utf8")) as { dockerImages: object };
      expect(assets.dockerImages).toEqual({});
      const template = JSON.parse(await readFile(join(out, "Tern.template.json"), "utf8")) as {
        Resources: Record<string, { Type: string }>;
      };
      expect(
        Object.values(template.Resources).filter((r) => r.Type === "AWS::Lambda::Function").length,
      ).toBeGreaterThanOrEqual(4);
      expect(Object.values(template.Resources).some((r) => r.Type === "AWS::ECR::PullThroughCacheRule")).toBe(true);
    } finally {
      await rm(out, { recursive: true, force: true });
      await rm(bin, { recursive: true, force: true });
    }
  });
});

describe("TernStack with storages' secrets", { timeout: 60_000 }, () => {
  it("lets what loads flows (the task roles, the agent and the task-state handler) read the storages' secrets, and nothing else", () => {
    const readers = statements(
      synth({ runnerImage: { uri: IMAGE }, storageSecrets: [GIT_TOKEN_SECRET], projectTaskRoles: { billing: {} } })
        .template,
    )
      .filter((st) => resourcesOf(st).includes(GIT_TOKEN_SECRET))
      .map((st) => {
        expect(actionsOf(st)).toEqual(["secretsmanager:GetSecretValue"]);
        return st.policy.replace(/[0-9A-F]{8}$/, "");
      })
      .sort();
    expect(readers).toEqual([
      "HandlersagentroleDefaultPolicy",
      "HandlerstaskstateroleDefaultPolicy",
      "RunnerTaskRoleDefaultPolicy",
      "RunnerTaskRolebillingDefaultPolicy",
    ]);
    expect(() =>
      parseConfig({ storageSecrets: ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:git"] }, "test"),
    ).toThrow(/storageSecrets.*complete Secrets Manager secret ARNs/s);
  });
});
