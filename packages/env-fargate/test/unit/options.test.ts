import { environmentFromJSON } from "@tern/core/plugin";
import { describe, expect, it } from "vitest";
import {
  definitionHash,
  desiredTaskDefinition,
  FargateTaskEnvironment,
  type FargateTaskEnvironmentOptions,
  resolveConfig,
  secretLooking,
} from "../../src/index.js";
import { AGENT_ENV as BASE_AGENT_ENV, rejects } from "./fixtures.js";

const AGENT_ENV = { ...BASE_AGENT_ENV, TERN_ECS_SUBNETS: "subnet-0123456789abcdef0, subnet-0123456789abcdef1" };

describe("FargateTaskEnvironment options", () => {
  it("accepts every documented option and keeps only JSON in the manifest", () => {
    const env = new FargateTaskEnvironment({
      family: "etl",
      cluster: "arn:aws:ecs:eu-west-1:123456789012:cluster/tern",
      region: "eu-west-1",
      image: "ghcr.io/acme/tern-runner:1",
      cpu: 1024,
      memory: 3072,
      subnets: ["subnet-0123456789abcdef0"],
      securityGroups: ["sg-01234567"],
      assignPublicIp: true,
      taskRoleArn: "arn:aws:iam::123456789012:role/task",
      executionRoleArn: "arn:aws:iam::123456789012:role/exec",
      containerName: "runner",
      environment: { LOG_LEVEL: "debug" },
      secrets: { DB_PASSWORD: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf" },
      logConfiguration: { group: "/acme/tern", streamPrefix: "etl" },
      capacityProviderStrategy: [
        { capacityProvider: "FARGATE_SPOT", weight: 3 },
        { capacityProvider: "FARGATE", base: 1 },
      ],
      platformVersion: "1.4.0",
      runtimePlatform: { cpuArchitecture: "X86_64" },
      ephemeralStorageGiB: 50,
      tags: { team: "data" },
      labels: ["prod"],
      onStart: () => {},
      extraTaskDefinition: { volumes: [{ name: "scratch" }] },
      extraContainerDefinition: { ulimits: [{ name: "nofile", softLimit: 4096, hardLimit: 8192 }] },
      extraRunTask: { enableExecuteCommand: true },
    });
    const json = env.toJSON();
    expect(json.type).toBe("FargateTaskEnvironment");
    expect(json.options).toMatchObject({ labels: ["prod"], family: "etl", cpu: 1024, memory: 3072 });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    expect(Object.keys(json.options)).not.toContain("onStart");
    // The agent rebuilds the same environment from the manifest's JSON.
    const rebuilt = environmentFromJSON(json);
    expect(rebuilt).toBeInstanceOf(FargateTaskEnvironment);
    expect(rebuilt.toJSON()).toEqual(json);
  });

  it("rejects a cpu/memory pair Fargate does not offer, listing the valid memory values for that cpu", () => {
    rejects({ cpu: 256, memory: 4096 }, /memory: 4096 MiB is not valid with cpu 256/, /512, 1024, 2048/);
    rejects({ cpu: 1024, memory: 1024 }, /2048, 3072, 4096, 5120, 6144, 7168, 8192/);
    rejects({ cpu: 8192, memory: 20000 }, /16384, 20480, 24576/);
    rejects({ cpu: 300 }, /cpu: 300 is not a Fargate size/, /256, 512, 1024, 2048, 4096, 8192, 16384/);
    rejects({ memory: 8192 }, /not valid with cpu 512 \(the default cpu; set cpu to change it\)/);
    expect(() => new FargateTaskEnvironment({ cpu: 16384, memory: 122880 })).not.toThrow();
  });

  it("rejects no subnets and malformed network ids", () => {
    rejects({ subnets: [] }, /subnets: no subnets given/, /TERN_ECS_SUBNETS/);
    rejects({ subnets: ["subnet-xyz"] }, /subnets: "subnet-xyz" is not an id such as "subnet-0123456789abcdef0"/);
    rejects({ securityGroups: "sg-01234567" }, /securityGroups: expected a list/);
  });

  it("rejects secret-looking environment values with a hint to use secrets", () => {
    rejects(
      { environment: { AWS_SECRET_ACCESS_KEY: "x" } },
      /environment\.AWS_SECRET_ACCESS_KEY/,
      /secrets: \{ AWS_SECRET_ACCESS_KEY: "arn:aws:secretsmanager:/,
    );
    rejects({ environment: { KEY_ID: "AKIAIOSFODNN7EXAMPLE" } }, /AWS access key id/);
    rejects(
      { environment: { SIGNING: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" } },
      /looks like an AWS secret access key/,
    );
    rejects({ environment: { DB_PASSWORD: "hunter2" } }, /says it holds a credential/);
    rejects({ environment: { DB_PASS: "hunter2" } }, /says it holds a credential/);
    rejects({ environment: { STRIPE_API_KEY: "x" } }, /says it holds a credential/);
    rejects({ environment: { DATABASE_URL: "postgres://admin:hunter2@db.internal:5432/app" } }, /URL with a password/);
    rejects({ environment: { GH: `ghp_${"a".repeat(36)}` } }, /GitHub token/);
    rejects({ environment: { PAY: `sk_live_${"a".repeat(24)}` } }, /Stripe key/);
    rejects({ environment: { HOOK: "https://hooks.slack.com/services/T000/B000/XXXX" } }, /Slack webhook/);
    rejects({ environment: { PEM: "-----BEGIN RSA PRIVATE KEY-----\nMIIE" } }, /private key/);
    // The escape hatches are scanned too.
    rejects(
      { extraContainerDefinition: { dockerLabels: { token: `xoxb-${"1".repeat(20)}` } } },
      /extraContainerDefinition\.dockerLabels\.token: it looks like a Slack token/,
    );
    // Names that only contain KEY are not credentials.
    expect(
      () => new FargateTaskEnvironment({ environment: { CACHE_KEY: "users", S3_KEY_PREFIX: "raw/" } }),
    ).not.toThrow();
    // Ordinary values pass: a URL, a 40-character hex digest, a path.
    expect(
      () =>
        new FargateTaskEnvironment({
          environment: {
            API_URL: "https://example.com/api/v1",
            COMMIT: "0123456789abcdef0123456789abcdef01234567",
            TOKEN_ENDPOINT_PATH: "",
          },
        }),
    ).not.toThrow();
    expect(secretLooking("MODE", "fast")).toBeUndefined();
  });

  it("rejects secrets that are not Secrets Manager or SSM ARNs", () => {
    rejects({ secrets: { DB: "hunter2" } }, /secrets\.DB: is not a Secrets Manager secret ARN/, /never its value/);
    // The value is never repeated in the message: it may be the secret itself.
    let message = "";
    try {
      new FargateTaskEnvironment({ secrets: { DB: "hunter2" } });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toContain("hunter2");
    expect(
      () => new FargateTaskEnvironment({ secrets: { P: "arn:aws:ssm:eu-west-1:123456789012:parameter/tern/p" } }),
    ).not.toThrow();
    rejects(
      { environment: { X: "1" }, secrets: { X: "arn:aws:ssm:eu-west-1:123456789012:parameter/x" } },
      /X is also in environment/,
    );
  });

  it("rejects unknown escape-hatch keys and keys tern owns, never dropping them", () => {
    rejects({ extraTaskDefinition: { volumez: [] } }, /extraTaskDefinition: unknown key "volumez"/, /Allowed: volumes/);
    rejects({ extraTaskDefinition: { cpu: "1024" } }, /tern sets "cpu": use the cpu option instead/);
    rejects({ extraContainerDefinition: { command: ["sh"] } }, /tern sets "command" itself/);
    rejects({ extraRunTask: { overrides: {} } }, /tern sets "overrides" itself/);
    rejects({ extraRunTask: { placementConstraints: [] } }, /unknown key "placementConstraints"/);
  });

  it("rejects unknown options, both launchType and a strategy, and other malformed values", () => {
    rejects({ subnet: ["subnet-01234567"] }, /unknown option "subnet"/);
    rejects({ launchType: "FARGATE", capacityProviderStrategy: [{ capacityProvider: "FARGATE_SPOT" }] }, /not both/);
    rejects({ launchType: "EC2" }, /FARGATE_SPOT/);
    rejects({ capacityProviderStrategy: [{ capacityProvider: "SPOT" }] }, /"SPOT" is not "FARGATE" or "FARGATE_SPOT"/);
    rejects({ ephemeralStorageGiB: 10 }, /ephemeralStorageGiB: expected an integer from 21 to 200/);
    rejects({ taskRoleArn: "tern-task" }, /taskRoleArn: "tern-task" is not valid: give an IAM role ARN/);
    rejects({ tags: { "aws:x": "1" } }, /must .* not start with "aws:"/);
    rejects({ tags: { team: "data#1" } }, /has characters ECS refuses/);
    rejects({ environment: { TERN_RUN_ID: "x" } }, /tern sets this variable/);
    rejects({ runtimePlatform: { cpuArchitecture: "arm" } }, /"arm" is not "X86_64" or "ARM64"/);
    rejects({ logConfiguration: { group: "/g", driver: "splunk" } }, /unknown key "driver"/);
  });
});

describe("resolveConfig", () => {
  it("fills defaults from the agent's environment variables", () => {
    const env = new FargateTaskEnvironment({ cpu: 256, memory: 512 });
    const config = resolveConfig(env.options, "Nightly ETL!", AGENT_ENV);
    expect(config).toMatchObject({
      family: "tern-nightly-etl",
      cluster: "tern",
      region: "eu-west-1",
      subnets: ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
      securityGroups: ["sg-0123456789abcdef0"],
      assignPublicIp: false,
      image: AGENT_ENV.TERN_RUNNER_IMAGE,
      log: { group: "/tern/runs", streamPrefix: "tern" },
      launchType: "FARGATE",
      platformVersion: "LATEST",
      maxRelaunches: 2,
    });
  });

  it("names the option and the variable for whatever is missing, and checks values from the environment", () => {
    const env = new FargateTaskEnvironment();
    const without = (name: string) => Object.fromEntries(Object.entries(AGENT_ENV).filter(([k]) => k !== name));
    expect(() => resolveConfig(env.options, "f", without("TERN_ECS_SUBNETS"))).toThrow(
      /no subnets: .*TERN_ECS_SUBNETS/,
    );
    expect(() => resolveConfig(env.options, "f", without("TERN_RUNNER_IMAGE"))).toThrow(
      /no image: .*TERN_RUNNER_IMAGE/,
    );
    expect(() => resolveConfig(env.options, "f", without("AWS_REGION"))).toThrow(/no region: .*AWS_REGION/);
    expect(() => resolveConfig(env.options, "f", without("TERN_LOG_GROUP"))).toThrow(/no log group.*TERN_LOG_GROUP/);
    expect(() => resolveConfig(env.options, "f", without("TERN_ECS_SECURITY_GROUPS"))).toThrow(
      /no securityGroups: .*TERN_ECS_SECURITY_GROUPS/,
    );
    expect(() => resolveConfig(env.options, "f", without("TERN_ECS_TASK_ROLE_ARN"))).toThrow(
      /no taskRoleArn: .*TERN_ECS_TASK_ROLE_ARN/,
    );
    expect(() => resolveConfig(env.options, "f", without("TERN_ECS_EXECUTION_ROLE_ARN"))).toThrow(
      /no executionRoleArn: .*TERN_ECS_EXECUTION_ROLE_ARN/,
    );
    expect(() => resolveConfig(env.options, "f", { ...AGENT_ENV, TERN_ECS_SUBNETS: "subnet-nope" })).toThrow(
      /"subnet-nope" is not an id .*defaults read from TERN_ECS_SUBNETS/,
    );
  });
});

describe("the task definition", () => {
  const config = (options: FargateTaskEnvironmentOptions = {}) =>
    resolveConfig(new FargateTaskEnvironment(options).options, "etl", AGENT_ENV);

  it("is normalized: the order variables and secrets were given in does not change the hash", () => {
    const a = config({
      environment: { B: "2", A: "1" },
      secrets: {
        Y: "arn:aws:ssm:eu-west-1:123456789012:parameter/y",
        X: "arn:aws:ssm:eu-west-1:123456789012:parameter/x",
      },
    });
    const b = config({
      environment: { A: "1", B: "2" },
      secrets: {
        X: "arn:aws:ssm:eu-west-1:123456789012:parameter/x",
        Y: "arn:aws:ssm:eu-west-1:123456789012:parameter/y",
      },
    });
    expect(definitionHash(desiredTaskDefinition(a), a.tags)).toBe(definitionHash(desiredTaskDefinition(b), b.tags));
    const container = desiredTaskDefinition(a).containerDefinitions[0];
    expect(container?.environment).toEqual([
      { name: "A", value: "1" },
      { name: "B", value: "2" },
    ]);
    expect(container?.command).toEqual(["tern", "execute"]);
  });

  it("changes its hash with anything that changes the revision (image, size, tags)", () => {
    const hash = (options: FargateTaskEnvironmentOptions) => {
      const c = config(options);
      return definitionHash(desiredTaskDefinition(c), c.tags);
    };
    const base = hash({});
    expect(hash({ cpu: 1024, memory: 2048 })).not.toBe(base);
    expect(hash({ image: "ghcr.io/acme/other:2" })).not.toBe(base);
    expect(hash({ tags: { team: "x" } })).not.toBe(base);
    expect(hash({})).toBe(base);
  });
});
