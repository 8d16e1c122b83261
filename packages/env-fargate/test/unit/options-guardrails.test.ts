import { EnvironmentError } from "@tern/core/plugin";
import { describe, expect, it } from "vitest";
import {
  checkGuardrails,
  definitionHash,
  desiredTaskDefinition,
  FargateTaskEnvironment,
  type FargateTaskEnvironmentOptions,
  GUARDRAIL_VARIABLES,
  guardrailsFromEnv,
  overridesLength,
  resolveConfig,
  STACK_TAG,
} from "../../src/index.js";

const SUBNET_A = "subnet-0123456789abcdef0";
const SUBNET_B = "subnet-0123456789abcdef1";
const OTHER_SUBNET = "subnet-0fedcba9876543210";
const STACK_ROLE = "arn:aws:iam::123456789012:role/tern-task";
const BILLING_ROLE = "arn:aws:iam::123456789012:role/tern-task-billing";

/** What the CDK stack sets on the launching functions. */
const STACK_ENV = {
  AWS_REGION: "eu-west-1",
  TERN_ECS_CLUSTER: "tern",
  TERN_ECS_SUBNETS: `${SUBNET_A},${SUBNET_B}`,
  TERN_ECS_SECURITY_GROUPS: "sg-0123456789abcdef0",
  TERN_ECS_TASK_ROLE_ARN: STACK_ROLE,
  TERN_ECS_EXECUTION_ROLE_ARN: "arn:aws:iam::123456789012:role/tern-execution",
  TERN_RUNNER_IMAGE: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1",
  TERN_LOG_GROUP: "/tern/runs",
  [GUARDRAIL_VARIABLES.enforceNetwork]: "true",
  [GUARDRAIL_VARIABLES.familyPrefix]: "tern-",
  [GUARDRAIL_VARIABLES.stackTag]: "TernStack",
};

function error(run: () => unknown): Error {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(EnvironmentError);
    return e as Error;
  }
  throw new Error("expected an EnvironmentError");
}

const resolve = (options: FargateTaskEnvironmentOptions, env: Record<string, string> = STACK_ENV, project?: string) =>
  resolveConfig(new FargateTaskEnvironment(options).options, "etl", env, project === undefined ? {} : { project });

describe("the stack's guardrails, enforced for every launch", () => {
  it("lets a flow that names nothing of the network run with the stack's settings, tagged with the stack", () => {
    const config = resolve({ cpu: 1024, memory: 2048 });
    expect(config.subnets).toEqual([SUBNET_A, SUBNET_B]);
    expect(config.assignPublicIp).toBe(false);
    expect(config.family).toBe("tern-etl");
    expect(config.tags[STACK_TAG]).toBe("TernStack");
    // A flow may narrow the network to part of the stack's.
    expect(resolve({ subnets: [SUBNET_B] }).subnets).toEqual([SUBNET_B]);
  });

  it("refuses other subnets, naming the setting, what was asked and what the stack allows", () => {
    const message = error(() => resolve({ subnets: [SUBNET_A, OTHER_SUBNET] })).message;
    expect(message).toMatch(/subnets: this flow asks for subnet-0fedcba9876543210/);
    expect(message).toContain(`allow only ${SUBNET_A}, ${SUBNET_B}`);
    expect(message).toMatch(/TERN_ECS_SUBNETS, TERN_ECS_ENFORCE_NETWORK/);
    expect(message).toMatch(/Remove subnets from the environment's options/);
  });

  it("refuses other security groups, a public IP, another cluster, a family outside the prefix and another task role", () => {
    expect(error(() => resolve({ securityGroups: ["sg-0fedcba9876543210"] })).message).toMatch(
      /securityGroups: this flow asks for sg-0fedcba9876543210.*allow only sg-0123456789abcdef0/,
    );
    expect(error(() => resolve({ assignPublicIp: true })).message).toMatch(
      /assignPublicIp: this flow asks for a public IP/,
    );
    expect(error(() => resolve({ cluster: "prod" })).message).toMatch(/cluster: this flow asks for "prod".*"tern"/);
    // The same cluster by ARN is the same cluster.
    expect(resolve({ cluster: "arn:aws:ecs:eu-west-1:123456789012:cluster/tern" }).cluster).toMatch(/cluster\/tern$/);
    expect(error(() => resolve({ family: "admin-task" })).message).toMatch(
      /family: this flow asks for "admin-task".*families starting with "tern-" \(TERN_ECS_FAMILY_PREFIX/,
    );
    expect(error(() => resolve({ taskRoleArn: "arn:aws:iam::123456789012:role/admin" })).message).toMatch(
      /taskRoleArn: this flow asks for "arn:aws:iam::123456789012:role\/admin"/,
    );
  });

  it("gives a project with its own task role that role, and refuses it to other projects", () => {
    const env = { ...STACK_ENV, [GUARDRAIL_VARIABLES.projectTaskRoles]: JSON.stringify({ billing: BILLING_ROLE }) };
    expect(resolve({}, env, "billing").taskRoleArn).toBe(BILLING_ROLE);
    expect(resolve({}, env, "default").taskRoleArn).toBe(STACK_ROLE);
    expect(error(() => resolve({ taskRoleArn: BILLING_ROLE }, env, "default")).message).toMatch(
      /taskRoleArn: .*tern-task-billing.*allow only arn:aws:iam::123456789012:role\/tern-task \(/,
    );
    expect(error(() => resolve({ taskRoleArn: STACK_ROLE }, env, "billing")).message).toMatch(
      /allow only arn:aws:iam::123456789012:role\/tern-task-billing/,
    );
    // Without the project (an older caller), any of the stack's task roles.
    expect(resolve({ taskRoleArn: BILLING_ROLE }, env).taskRoleArn).toBe(BILLING_ROLE);
    expect(error(() => resolve({}, { ...env, [GUARDRAIL_VARIABLES.projectTaskRoles]: "{" })).message).toMatch(
      /TERN_ECS_PROJECT_TASK_ROLES is not JSON/,
    );
  });

  it("enforces nothing outside the stack, and refuses enforcement without the stack's settings", () => {
    const env: Record<string, string> = { ...STACK_ENV };
    delete env[GUARDRAIL_VARIABLES.enforceNetwork];
    delete env[GUARDRAIL_VARIABLES.familyPrefix];
    expect(guardrailsFromEnv(env)).toBeUndefined();
    expect(resolve({ subnets: [OTHER_SUBNET], assignPublicIp: true, family: "x" }, env).subnets).toEqual([
      OTHER_SUBNET,
    ]);
    const noSubnets: Record<string, string> = { ...STACK_ENV };
    delete noSubnets.TERN_ECS_SUBNETS;
    expect(error(() => guardrailsFromEnv(noSubnets)).message).toMatch(/TERN_ECS_SUBNETS is not set/);
    expect(error(() => guardrailsFromEnv({ [GUARDRAIL_VARIABLES.enforceNetwork]: "yes" })).message).toMatch(
      /must be "true" or "false", got "yes"/,
    );
  });

  it("is a pure check of a resolved configuration", () => {
    const config = resolve({});
    expect(() => checkGuardrails(config, undefined)).not.toThrow();
    expect(() => checkGuardrails(config, { familyPrefix: "acme-" })).toThrow(/families starting with "acme-"/);
    expect(() => checkGuardrails(config, { subnets: [OTHER_SUBNET] })).toThrow(/subnets/);
  });

  it("puts the stack's tag in the task definition's hash, so every revision tern registers carries it", () => {
    const tagged = resolve({});
    const env: Record<string, string> = { ...STACK_ENV };
    delete env[GUARDRAIL_VARIABLES.stackTag];
    const untagged = resolve({}, env);
    expect(untagged.tags[STACK_TAG]).toBeUndefined();
    const definition = desiredTaskDefinition(tagged);
    expect(definitionHash(definition, tagged.tags)).not.toBe(definitionHash(definition, untagged.tags));
  });
});

describe("AWS's limits, checked when the environment is built", () => {
  it("refuses tag values starting with aws: (ECS reserves them for values too)", () => {
    expect(() => new FargateTaskEnvironment({ tags: { team: "aws:data" } })).toThrow(
      /tags.team: the value "aws:data" starts with "aws:", which ECS reserves/,
    );
    expect(() => new FargateTaskEnvironment({ tags: { team: "AWS:data" } })).toThrow(/reserves/);
    expect(new FargateTaskEnvironment({ tags: { team: "data:aws" } }).options.tags).toEqual({ team: "data:aws" });
  });

  it("refuses referenceId in extraRunTask: it is not a user option", () => {
    expect(() => new FargateTaskEnvironment({ extraRunTask: { referenceId: "abc" } })).toThrow(
      /extraRunTask.referenceId: is not a user option/,
    );
  });

  it("refuses ARM64 on Fargate Spot", () => {
    expect(
      () =>
        new FargateTaskEnvironment({
          runtimePlatform: { cpuArchitecture: "ARM64" },
          capacityProviderStrategy: [{ capacityProvider: "FARGATE" }, { capacityProvider: "FARGATE_SPOT" }],
        }),
    ).toThrow(/runtimePlatform: ARM64 tasks cannot run on Fargate Spot/);
    expect(
      new FargateTaskEnvironment({
        runtimePlatform: { cpuArchitecture: "ARM64" },
        capacityProviderStrategy: [{ capacityProvider: "FARGATE" }],
      }).options.runtimePlatform,
    ).toEqual({ cpuArchitecture: "ARM64" });
  });

  it("refuses ARM64 with an image whose reference names an x86 architecture, given or from the agent", () => {
    for (const image of ["amd64/node:22", "ghcr.io/acme/runner:1.2-amd64", "acme/runner:x86_64"]) {
      expect(() => new FargateTaskEnvironment({ runtimePlatform: { cpuArchitecture: "ARM64" }, image })).toThrow(
        /has no arm64 variant/,
      );
    }
    expect(
      new FargateTaskEnvironment({ runtimePlatform: { cpuArchitecture: "ARM64" }, image: "node:22" }).options.image,
    ).toBe("node:22");
    expect(
      error(() =>
        resolve(
          { runtimePlatform: { cpuArchitecture: "ARM64" } },
          { ...STACK_ENV, TERN_RUNNER_IMAGE: "amd64/node:22" },
        ),
      ).message,
    ).toMatch(/"amd64\/node:22".*no arm64 variant.*defaults read from/);
  });

  it("refuses ARM64 when the stack says the agent's image has no arm64 variant", () => {
    const built = { ...STACK_ENV, [GUARDRAIL_VARIABLES.imageArchitectures]: "X86_64" };
    expect(error(() => resolve({ runtimePlatform: { cpuArchitecture: "ARM64" } }, built)).message).toMatch(
      /runtimePlatform: ARM64, but the agent's runner image ".*tern-runner:1" \(TERN_RUNNER_IMAGE\) has X86_64 only \(TERN_RUNNER_IMAGE_ARCHITECTURES\)/,
    );
    expect(resolve({}, built).cpuArchitecture).toBe("X86_64");
    // An image of the flow's own is the flow's business; a multi-architecture one passes.
    expect(resolve({ runtimePlatform: { cpuArchitecture: "ARM64" }, image: "node:22" }, built).image).toBe("node:22");
    const stock = { ...STACK_ENV, [GUARDRAIL_VARIABLES.imageArchitectures]: "X86_64,ARM64" };
    expect(resolve({ runtimePlatform: { cpuArchitecture: "ARM64" } }, stock).cpuArchitecture).toBe("ARM64");
  });

  it("measures the whole overrides for ECS's 8,192 characters, not only containerOverrides", () => {
    const containerOverrides = [{ name: "tern-runner", environment: [{ name: "TERN_RUN_ID", value: "r" }] }];
    const whole = { containerOverrides, cpu: "1024", memory: "2048", taskRoleArn: STACK_ROLE };
    expect(overridesLength(whole)).toBe(JSON.stringify(whole).length);
    expect(overridesLength(whole)).toBeGreaterThan(JSON.stringify(containerOverrides).length);
    expect(overridesLength(undefined)).toBe(2);
  });
});
