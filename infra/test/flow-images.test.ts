/**
 * The flow-image repository (DockerStorage, issue 19): the repository itself, and who may do
 * what with it (CI pushes, the execution role pulls, the handlers read), statement by statement.
 */
import { App, type CfnElement, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as iam from "aws-cdk-lib/aws-iam";
import { AwsSolutionsChecks } from "cdk-nag";
import { beforeAll, describe, expect, it } from "vitest";
import { parseConfig, TernConfigError } from "../lib/config.js";
import { ECR_PULL_ACTIONS, ECR_PUSH_ACTIONS, FlowImages } from "../lib/flow-images.js";
import { TernStack } from "../lib/stack.js";

const ECR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1";
const BASE_REPOSITORY = "arn:aws:ecr:eu-west-1:123456789012:repository/acme/node-base";

type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: unknown };

function synth(config: Parameters<typeof parseConfig>[0]) {
  const app = new App();
  const stack = new TernStack(app, "Tern", { config: parseConfig(config, "test") });
  const report = new AwsSolutionsChecks(app).validateScope(stack);
  return { stack, template: Template.fromStack(stack), report };
}

/** Every statement of every identity policy (inline or managed), with its policy's logical id. */
function statements(template: Template): Array<Statement & { policy: string }> {
  const out: Array<Statement & { policy: string }> = [];
  for (const type of ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"]) {
    for (const [id, policy] of Object.entries(template.findResources(type))) {
      for (const s of policy.Properties.PolicyDocument.Statement as Statement[]) out.push({ ...s, policy: id });
    }
  }
  return out;
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const ecrStatements = (all: Array<Statement & { policy: string }>, policy: RegExp) =>
  all.filter((s) => policy.test(s.policy) && actionsOf(s).some((a) => a.startsWith("ecr:")));

/** The repository's ARN as the template names it. */
const repositoryArn = (stack: TernStack) => ({
  "Fn::GetAtt": [stack.getLogicalId(stack.flowImages.repository.node.defaultChild as CfnElement), "Arn"],
});

describe("the flow-image repository", { timeout: 60_000 }, () => {
  let result: ReturnType<typeof synth>;
  beforeAll(() => {
    result = synth({ runnerImage: { uri: ECR_IMAGE }, cloudEvents: { auth: "iam" } });
  });

  it("scans on push, encrypts with AES-256, keeps tags mutable, and is retained when the stack goes", () => {
    result.template.resourceCountIs("AWS::ECR::Repository", 1);
    result.template.hasResource("AWS::ECR::Repository", {
      Properties: Match.objectLike({
        ImageScanningConfiguration: { ScanOnPush: true },
        EncryptionConfiguration: { EncryptionType: "AES256" },
        // Content-derived tags are pushed again as they are: IMMUTABLE would refuse that re-push.
        ImageTagMutability: "MUTABLE",
      }),
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
    });
  });

  it("expires untagged images after a day and tagged ones beyond 1000, oldest pushed first", () => {
    const [repository] = Object.values(result.template.findResources("AWS::ECR::Repository"));
    const policy = JSON.parse(repository?.Properties.LifecyclePolicy.LifecyclePolicyText);
    expect(policy.rules).toEqual([
      {
        rulePriority: 1,
        description: expect.stringContaining("untagged"),
        selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 },
        action: { type: "expire" },
      },
      {
        rulePriority: 2,
        description: expect.stringContaining("cannot run"),
        selection: { tagStatus: "tagged", tagPatternList: ["*"], countType: "imageCountMoreThan", countNumber: 1000 },
        action: { type: "expire" },
      },
    ]);
  });

  it("outputs the repository's URI and exposes the repository on the stack", () => {
    const { stack, template } = result;
    const outputs = template.findOutputs("FlowImageRepositoryUri");
    expect(outputs.FlowImageRepositoryUri?.Value).toEqual(stack.resolve(stack.flowImages.repository.repositoryUri));
    expect(JSON.stringify(outputs.FlowImageRepositoryUri?.Value)).toContain(".dkr.ecr.");
    expect(stack.resolve(stack.flowImages.repositoryUri)).toEqual(outputs.FlowImageRepositoryUri?.Value);
  });

  it("lets CI log in to ECR, push and pull on the repository only, and nothing else of ECR", () => {
    const { stack, template } = result;
    const ci = ecrStatements(statements(template), /^CiPolicy/);
    expect(ci.map((s) => ({ actions: actionsOf(s), resource: stack.resolve(s.Resource) }))).toEqual([
      { actions: ["ecr:GetAuthorizationToken"], resource: "*" },
      {
        actions: [
          "ecr:BatchCheckLayerAvailability",
          "ecr:InitiateLayerUpload",
          "ecr:UploadLayerPart",
          "ecr:CompleteLayerUpload",
          "ecr:PutImage",
          "ecr:BatchGetImage",
          "ecr:GetDownloadUrlForLayer",
        ],
        resource: repositoryArn(stack),
      },
    ]);
    // No delete, no repository setting: CI cannot remove an image a version names.
    expect(actionsOf(ci[1] as Statement)).toEqual([...ECR_PUSH_ACTIONS]);
  });

  it("lets the execution role pull flow images from the repository", () => {
    const { stack, template } = result;
    const execution = ecrStatements(statements(template), /^RunnerExecutionRole/);
    expect(execution).toContainEqual(
      expect.objectContaining({ Action: [...ECR_PULL_ACTIONS], Resource: repositoryArn(stack) }),
    );
    expect(execution.filter((s) => s.Resource === "*")).toEqual([
      expect.objectContaining({ Action: "ecr:GetAuthorizationToken" }),
    ]);
  });

  it("lets every handler read the repository's manifests and blobs (a Docker-stored flow's manifest) and log in, nothing more", () => {
    const { stack, template } = result;
    const roles = Object.keys(
      template.findResources("AWS::IAM::Role", { Properties: { Description: Match.stringLikeRegexp("handler$") } }),
    );
    expect(roles).toHaveLength(3); // agent, task-state, cloudevents
    const all = statements(template);
    for (const role of roles) {
      const prefix = role.replace(/[0-9A-F]{8}$/, "");
      const ecr = ecrStatements(all, new RegExp(`^${prefix}DefaultPolicy`));
      expect(
        ecr.map((s) => ({ actions: actionsOf(s), resource: stack.resolve(s.Resource) })),
        role,
      ).toEqual([
        { actions: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], resource: repositoryArn(stack) },
        { actions: ["ecr:GetAuthorizationToken"], resource: "*" },
      ]);
    }
  });

  it("gives the task roles nothing of ECR: a task reads its flow from its own image's file system", () => {
    expect(ecrStatements(statements(result.template), /^RunnerTaskRole/)).toEqual([]);
  });

  it("passes cdk-nag", () => {
    expect(result.report.violations.map((v) => `${v.ruleName}: ${v.description}`)).toEqual([]);
  });

  it("lets a CDK app grant more on the repository", () => {
    const app = new App();
    const stack = new TernStack(app, "Tern", { config: parseConfig({ runnerImage: { uri: ECR_IMAGE } }, "test") });
    const auditor = new iam.Role(stack, "Auditor", { assumedBy: new iam.AccountRootPrincipal() });
    stack.flowImages.repository.grantRead(auditor);
    const template = Template.fromStack(stack);
    const granted = ecrStatements(statements(template), /^AuditorDefaultPolicy/);
    expect(JSON.stringify(granted)).toContain(
      stack.getLogicalId(stack.flowImages.repository.node.defaultChild as CfnElement),
    );
  });
});

describe("the execution role logs in to ECR whatever the runner image", { timeout: 60_000 }, () => {
  it.each([
    ["the stock image", {}],
    ["an ECR image URI", { runnerImage: { uri: ECR_IMAGE } }],
    ["an image on Docker Hub", { runnerImage: { uri: "docker.io/acme/tern-runner:1" }, runner: "bundle" }],
    ["this repository's Docker build", { runnerImage: "build" }],
  ])("%s: one ecr:GetAuthorizationToken, and pulls on the flow-image repository", (_name, config) => {
    const { stack, template, report } = synth(config);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    const execution = ecrStatements(statements(template), /^RunnerExecutionRole/);
    expect(execution.filter((s) => actionsOf(s).includes("ecr:GetAuthorizationToken"))).toEqual([
      expect.objectContaining({ Action: "ecr:GetAuthorizationToken", Resource: "*" }),
    ]);
    expect(execution.map((s) => stack.resolve(s.Resource))).toContainEqual(repositoryArn(stack));
  });
});

describe("flow-image configuration", { timeout: 60_000 }, () => {
  it("flowImageMaxCount: another count, or false for no count rule (untagged images still expire)", () => {
    const rules = (config: Parameters<typeof parseConfig>[0]) => {
      const { template } = synth(config);
      const [repository] = Object.values(template.findResources("AWS::ECR::Repository"));
      return JSON.parse(repository?.Properties.LifecyclePolicy.LifecyclePolicyText).rules as Array<{
        selection: { tagStatus: string; countNumber: number };
      }>;
    };
    expect(rules({ flowImageMaxCount: 250 }).map((r) => [r.selection.tagStatus, r.selection.countNumber])).toEqual([
      ["untagged", 1],
      ["tagged", 250],
    ]);
    expect(rules({ flowImageMaxCount: false }).map((r) => r.selection.tagStatus)).toEqual(["untagged"]);
  });

  it("flowImageBaseRepositories: CI may pull from those repositories, and only pull", () => {
    const other = "arn:aws:ecr:eu-west-1:123456789012:repository/tern-ecr-public/docker/library/node";
    const { template, report } = synth({ flowImageBaseRepositories: [BASE_REPOSITORY, other] });
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    const bases = statements(template).filter((s) => JSON.stringify(s.Resource).includes(BASE_REPOSITORY));
    expect(bases).toEqual([
      expect.objectContaining({
        policy: expect.stringMatching(/^CiPolicy/),
        Action: [...ECR_PULL_ACTIONS],
        Resource: [BASE_REPOSITORY, other],
      }),
    ]);
  });

  it("refuses counts and repository ARNs it cannot use, naming the value", () => {
    const problems = (config: Record<string, unknown>) => {
      try {
        parseConfig(config, "tern.config.json");
      } catch (error) {
        expect(error).toBeInstanceOf(TernConfigError);
        return (error as Error).message;
      }
      return "";
    };
    expect(problems({ flowImageMaxCount: 0 })).toMatch(/flowImageMaxCount: 0 is not a count of flow images/);
    expect(problems({ flowImageMaxCount: 2.5 })).toMatch(/flowImageMaxCount: 2\.5 is not a count/);
    expect(problems({ flowImageMaxCount: true })).toMatch(/flowImageMaxCount: true is not a count/);
    expect(problems({ flowImageBaseRepositories: ["acme/node-base"] })).toMatch(
      /flowImageBaseRepositories\.0: "acme\/node-base" is not an ECR repository ARN/,
    );
    expect(problems({ flowImageBaseRepositories: [`${BASE_REPOSITORY}*`] })).toMatch(/is not an ECR repository ARN/);
    expect(problems({ flowImageMaxCount: 5000, flowImageBaseRepositories: [BASE_REPOSITORY] })).toBe("");
  });

  it("FlowImages alone refuses what a JavaScript caller may pass, naming it", () => {
    const stack = new Stack(new App(), "S");
    expect(() => new FlowImages(stack, "A", { maxImageCount: -1 })).toThrow(/maxImageCount: -1 is not a count/);
    expect(() => new FlowImages(stack, "B", { untaggedImageDays: 0 })).toThrow(/untaggedImageDays: 0 is not a number/);
    const images = new FlowImages(stack, "C", { untaggedImageDays: 3 });
    expect(() => images.pushStatements(["*"])).toThrow(/"\*" is not an ECR repository ARN/);
    const [repository] = Object.values(Template.fromStack(stack).findResources("AWS::ECR::Repository"));
    expect(JSON.parse(repository?.Properties.LifecyclePolicy.LifecyclePolicyText).rules[0].selection.countNumber).toBe(
      3,
    );
  });
});
