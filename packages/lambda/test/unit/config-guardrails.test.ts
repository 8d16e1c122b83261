import { resolveConfig } from "@tern/env-fargate";
import { describe, expect, it } from "vitest";
import { configProblems } from "./config-problems.js";

/** What the CDK stack sets on a launching function, guardrails included. */
const STACK = {
  TERN_BACKEND: "dynamodb://tern-state?region=eu-west-1",
  TERN_ECS_CLUSTER: "tern",
  TERN_ECS_SUBNETS: "subnet-0123456789abcdef0",
  TERN_ECS_SECURITY_GROUPS: "sg-0123456789abcdef0",
  TERN_ECS_TASK_ROLE_ARN: "arn:aws:iam::123456789012:role/tern-task",
  TERN_ECS_EXECUTION_ROLE_ARN: "arn:aws:iam::123456789012:role/tern-execution",
  TERN_RUNNER_IMAGE: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1",
  TERN_LOG_GROUP: "/tern/runs",
  TERN_ECS_ENFORCE_NETWORK: "true",
  TERN_ECS_FAMILY_PREFIX: "tern-",
  TERN_ECS_STACK_TAG: "Tern",
  TERN_ECS_PROJECT_TASK_ROLES: JSON.stringify({ billing: "arn:aws:iam::123456789012:role/tern-task-billing" }),
};

const problems = (env: Record<string, string>) => configProblems(env, { ecs: true });

describe("the guardrail settings of the Lambda agent", () => {
  it("accepts what the stack sets", () => {
    expect(problems(STACK)).toEqual([]);
  });

  it("names each malformed guardrail variable at cold start, not at the first launch", () => {
    const found = problems({
      ...STACK,
      TERN_ECS_ENFORCE_NETWORK: "yes",
      TERN_ECS_FAMILY_PREFIX: "tern *",
      TERN_ECS_PROJECT_TASK_ROLES: '{"billing": "not-a-role"}',
    });
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^TERN_ECS_ENFORCE_NETWORK .*"yes"/),
        expect.stringMatching(/^TERN_ECS_FAMILY_PREFIX must be a task definition family prefix/),
        expect.stringMatching(/^TERN_ECS_PROJECT_TASK_ROLES must be JSON mapping project names to task role ARNs/),
      ]),
    );
  });

  it("requires the stack's security groups and task role when the network is enforced", () => {
    const env: Record<string, string> = { ...STACK };
    delete env.TERN_ECS_SECURITY_GROUPS;
    delete env.TERN_ECS_TASK_ROLE_ARN;
    expect(problems(env)).toEqual([
      expect.stringMatching(/^TERN_ECS_SECURITY_GROUPS is missing: .*TERN_ECS_ENFORCE_NETWORK is true/),
      expect.stringMatching(/^TERN_ECS_TASK_ROLE_ARN is missing: .*TERN_ECS_ENFORCE_NETWORK is true/),
    ]);
    expect(problems({ ...env, TERN_ECS_ENFORCE_NETWORK: "false" })).toEqual([]);
  });

  it("reads the TERN_ECS_* variables with the Fargate environment's schema: what one refuses, the other does", () => {
    const bad = { ...STACK, TERN_ECS_FAMILY_PREFIX: "tern *" };
    expect(problems(bad)).toEqual([
      expect.stringMatching(/^TERN_ECS_FAMILY_PREFIX must be a task definition family prefix/),
    ]);
    expect(() => resolveConfig({}, "etl", { ...bad, AWS_REGION: "eu-west-1" })).toThrow(
      /TERN_ECS_FAMILY_PREFIX must be a task definition family prefix such as tern-, got "tern \*"/,
    );
    // Lists alike: entries trimmed, empty ones (a trailing comma) dropped.
    const list = { ...STACK, TERN_ECS_SUBNETS: "subnet-0123456789abcdef0, subnet-0123456789abcdef1," };
    expect(problems(list)).toEqual([]);
    expect(resolveConfig({}, "etl", { ...list, AWS_REGION: "eu-west-1" }).subnets).toEqual([
      "subnet-0123456789abcdef0",
      "subnet-0123456789abcdef1",
    ]);
  });
});
