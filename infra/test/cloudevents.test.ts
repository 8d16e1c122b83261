/**
 * The CloudEvents endpoint's share of the stack: the launch queue it hands runs to, the agent
 * consuming it with a bounded concurrency (no reserved concurrency needed, so a new account
 * deploys it), and the CloudEvents function's permission to send to it, and nothing more.
 */
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../lib/config.js";
import { LAUNCH_QUEUE_MAX_CONCURRENCY } from "../lib/handlers.js";
import { TernStack } from "../lib/stack.js";

const IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1";
const TRIGGER = { name: "orders", flow: "process-order", pattern: { type: ["com.acme.order.created"] } };

function synth(config: Parameters<typeof parseConfig>[0]) {
  const app = new App();
  const stack = new TernStack(app, "Tern", { config: parseConfig(config, "test") });
  const report = new AwsSolutionsChecks(app).validateScope(stack);
  return { stack, template: Template.fromStack(stack), report };
}

/** The logical id of the function whose description is `tern <name> handler`. */
function functionId(template: Template, name: string): string {
  const found = Object.entries(template.findResources("AWS::Lambda::Function")).find(
    ([, fn]) => fn.Properties.Description === `tern ${name} handler`,
  );
  if (found === undefined) throw new Error(`no ${name} function in the template`);
  return found[0];
}

describe("the CloudEvents endpoint's launch queue", { timeout: 60_000 }, () => {
  const { template, report } = synth({
    runnerImage: { uri: IMAGE },
    triggers: [TRIGGER],
    cloudEvents: { auth: "hmac" },
  });
  const queues = template.findResources("AWS::SQS::Queue", {
    Properties: { RedrivePolicy: Match.objectLike({ maxReceiveCount: 3 }) },
  });
  const [queueId] = Object.keys(queues);

  it("is an encrypted queue with a dead-letter queue, consumed by the agent at most LAUNCH_QUEUE_MAX_CONCURRENCY at a time", () => {
    expect(Object.keys(queues)).toHaveLength(1);
    expect(queues[queueId as string]?.Properties).toMatchObject({ SqsManagedSseEnabled: true, VisibilityTimeout: 120 });
    expect(LAUNCH_QUEUE_MAX_CONCURRENCY).toBeGreaterThanOrEqual(2);
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: { "Fn::GetAtt": [queueId, "Arn"] },
      FunctionName: { Ref: functionId(template, "agent") },
      BatchSize: 10,
      ScalingConfig: { MaximumConcurrency: LAUNCH_QUEUE_MAX_CONCURRENCY },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
    // The bound holds without reserved concurrency, which a new account's first deploy refuses.
    for (const fn of Object.values(template.findResources("AWS::Lambda::Function"))) {
      expect(fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
    }
  });

  it("is named to the CloudEvents function, which may send to it and to nothing else of SQS", () => {
    const cloudEvents = functionId(template, "cloudevents");
    const fn = template.findResources("AWS::Lambda::Function")[cloudEvents] as {
      Properties: { Environment: { Variables: Record<string, unknown> }; Role: unknown };
    };
    expect(fn.Properties.Environment.Variables.TERN_LAUNCH_QUEUE_URL).toEqual({ Ref: queueId });
    const role = (fn.Properties.Role as { "Fn::GetAtt": [string, string] })["Fn::GetAtt"][0];
    const sqsStatements = Object.values(template.findResources("AWS::IAM::Policy"))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(role))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>)
      .filter((s) => [s.Action].flat().some((a) => a.startsWith("sqs:")));
    const onLaunchQueue = sqsStatements.filter((st) => JSON.stringify(st.Resource).includes(queueId as string));
    expect(onLaunchQueue).toEqual([
      expect.objectContaining({
        Action: ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
        Resource: { "Fn::GetAtt": [queueId, "Arn"] },
      }),
    ]);
    // The rest is every function's own: sending failed asynchronous invocations to the dead-letter queue.
    for (const other of sqsStatements.filter((st) => !onLaunchQueue.includes(st))) {
      expect(other).toMatchObject({
        Action: "sqs:SendMessage",
        Resource: { "Fn::GetAtt": [expect.stringMatching(/DeadLetterQueue/), "Arn"] },
      });
    }
  });

  it("passes cdk-nag's AwsSolutions pack", () => {
    expect(report.violations.map((v) => `${v.ruleName}: ${v.description}`)).toEqual([]);
  });

  it("is not made without a CloudEvents endpoint", () => {
    const plain = synth({ runnerImage: { uri: IMAGE }, triggers: [TRIGGER] }).template;
    plain.resourceCountIs("AWS::Lambda::EventSourceMapping", 0);
    expect(
      Object.values(plain.findResources("AWS::Lambda::Function")).every(
        (fn) => fn.Properties.Environment?.Variables?.TERN_LAUNCH_QUEUE_URL === undefined,
      ),
    ).toBe(true);
  });
});
