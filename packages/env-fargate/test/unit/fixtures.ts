/**
 * Fixtures the env-fargate unit tests share: the configuration, ARNs, flow-version, run and
 * deployment records, the ExecuteContext, the ECS mock and the launch path's recording clock.
 * Each test file keeps what is specific to it and builds on these.
 */
import {
  DescribeTaskDefinitionCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
} from "@aws-sdk/client-ecs";
import type { Storage } from "@tern/core";
import {
  EnvironmentError,
  type ExecuteContext,
  type FlowVersionRecord,
  type JsonValue,
  type Manifest,
  type RunRecord,
  type RunState,
} from "@tern/core/plugin";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, expect } from "vitest";
import { type EcsDeployment, FargateTaskEnvironment, type FargateTaskEnvironmentOptions } from "../../src/index.js";
import { setLaunchClock } from "../../src/pacing.js";

/** The ECS client mock (one per test file: vitest loads this module anew for each file). */
export const ecs = mockClient(ECSClient);

export const ACCOUNT = "123456789012";
export const RUN_ID = "9a1c2b9e-8d7a-4c6b-9e5f-0a1b2c3d4e5f";
export const TD_ARN = `arn:aws:ecs:eu-west-1:${ACCOUNT}:task-definition/tern-etl:7`;
export const TASK_ARN = `arn:aws:ecs:eu-west-1:${ACCOUNT}:task/tern/0123456789abcdef0123456789abcdef`;
/** A fixed "now" for deciding runs against their tasks. */
export const NOW = 1_800_000_000_000;
export const storage = {} as Storage;
export const manifest = { flow: { name: "etl" } } as unknown as Manifest;

/** A complete configuration, with no waits between launch attempts. */
export const OPTIONS: FargateTaskEnvironmentOptions = {
  region: "eu-west-1",
  cluster: "tern",
  image: "ghcr.io/acme/tern-runner:1",
  subnets: ["subnet-0123456789abcdef0"],
  securityGroups: ["sg-0123456789abcdef0"],
  taskRoleArn: `arn:aws:iam::${ACCOUNT}:role/tern-task`,
  logConfiguration: "none",
  launchBackoffMs: 0,
};

/** The agent's environment variables that configure the Fargate environment's defaults. */
export const AGENT_ENV = {
  AWS_REGION: "eu-west-1",
  TERN_ECS_CLUSTER: "tern",
  TERN_ECS_SUBNETS: "subnet-0123456789abcdef0",
  TERN_ECS_SECURITY_GROUPS: "sg-0123456789abcdef0",
  TERN_ECS_TASK_ROLE_ARN: `arn:aws:iam::${ACCOUNT}:role/tern-task`,
  TERN_ECS_EXECUTION_ROLE_ARN: `arn:aws:iam::${ACCOUNT}:role/tern-execution`,
  TERN_RUNNER_IMAGE: `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/tern-runner:1`,
  TERN_LOG_GROUP: "/tern/runs",
};

/** A flow version of flow "etl" run on Fargate, with the given fields over the defaults. */
export function flowVersion(fields: Partial<FlowVersionRecord> = {}): FlowVersionRecord {
  return {
    project: "p",
    flow: "etl",
    version: 1,
    labels: [],
    storage: { type: "S3Storage", options: {} },
    location: "flows/etl/m.json",
    manifestHash: "a".repeat(64),
    environmentType: "FargateTaskEnvironment",
    createdAtMs: 1,
    ...fields,
  };
}

/** A Submitted run of flow "etl", with the given fields over the defaults. */
export function runRecord(fields: Partial<RunRecord> = {}): RunRecord {
  return {
    id: RUN_ID,
    project: "p",
    flow: "etl",
    version: 1,
    state: "Submitted",
    revision: 2,
    labels: [],
    parameters: {},
    scheduledAtMs: 1,
    createdAtMs: 1,
    updatedAtMs: 1,
    attempts: 1,
    ...fields,
  };
}

/** What an agent passes to `execute`: the default run and flow version unless given. */
export function executeContext(fields: Partial<ExecuteContext> = {}): ExecuteContext {
  return {
    run: runRecord(),
    flowVersion: flowVersion(),
    manifest,
    runnerCommand: ["tern"],
    runnerEnv: {},
    backendUrl: "dynamodb://tern-state?region=eu-west-1",
    ...fields,
  };
}

/** ECS's answer to DescribeTaskDefinition for a family with no revision yet. */
export const noSuchDefinition = () =>
  Object.assign(new Error("Unable to describe task definition."), { name: "ClientException" });

/** A family with no revision yet: the environment registers one, which gets `arn`. */
export function stubNewDefinition(arn: string = TD_ARN): void {
  ecs.on(DescribeTaskDefinitionCommand).rejects(noSuchDefinition());
  ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: arn } });
}

/** An environment set up for a family with no revision yet (it registers TD_ARN). */
export async function registeredEnvironment(
  options: FargateTaskEnvironmentOptions = OPTIONS,
  version: FlowVersionRecord = flowVersion(),
): Promise<FargateTaskEnvironment> {
  stubNewDefinition();
  const env = new FargateTaskEnvironment(options);
  await env.setup(storage, { flowVersion: version, manifest, annotate: async () => {} });
  return env;
}

// ECS's model has no ThrottlingException shape: the SDK raises a service exception named after `__type`, as here.
export const throttled = () =>
  Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });

/** RunTask throws each of `refusals` once, in order, then launches TASK_ARN. */
export function runTaskRefusing(...refusals: Error[]): void {
  let answers = ecs.on(RunTaskCommand);
  for (const refusal of refusals) answers = answers.rejectsOnce(refusal);
  answers.resolves({ tasks: [{ taskArn: TASK_ARN }] });
}

/** Expects the options to be refused with an EnvironmentError whose message matches every pattern. */
export function rejects(options: FargateTaskEnvironmentOptions | Record<string, unknown>, ...patterns: RegExp[]): void {
  let error: unknown;
  try {
    new FargateTaskEnvironment(options as FargateTaskEnvironmentOptions);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(EnvironmentError);
  for (const pattern of patterns) expect((error as Error).message).toMatch(pattern);
}

/** A launched task's deployment record, as the environment saves it on the run. */
export const DEPLOYMENT: EcsDeployment = {
  kind: "ecs-task",
  launched: true,
  region: "eu-west-1",
  cluster: "tern",
  taskArn: TASK_ARN,
  launch: 0,
  relaunches: 0,
  maxRelaunches: 2,
  containerName: "tern-runner",
  memory: 1024,
  logGroup: "/tern/runs",
  logStreamPrefix: "tern",
};

/** A run in `state` whose task was launched (DEPLOYMENT with the given fields), updated 30 s before NOW. */
export function launchedRun(
  state: RunState,
  deployment: Partial<EcsDeployment> = {},
  extra: Partial<RunRecord> = {},
): RunRecord {
  return runRecord({
    id: `run-${state}-${Math.random().toString(16).slice(2, 8)}`,
    state,
    revision: 4,
    scheduledAtMs: NOW - 60_000,
    createdAtMs: NOW - 60_000,
    updatedAtMs: NOW - 30_000,
    deployment: { ...DEPLOYMENT, ...deployment } as unknown as Record<string, JsonValue>,
    ...extra,
  });
}

/**
 * Installs, around each test of the calling file, a launch clock that records the waits
 * instead of waiting; `nowMs` is its time, which a test may move.
 */
export function useRecordingLaunchClock(): { waits: number[]; nowMs: number } {
  const clock = { waits: [] as number[], nowMs: 0 };
  beforeEach(() => {
    clock.waits.length = 0;
    clock.nowMs = 0;
    setLaunchClock({
      now: () => clock.nowMs,
      sleep: async (ms) => {
        clock.waits.push(ms);
        clock.nowMs += ms;
      },
    });
  });
  afterEach(() => setLaunchClock(undefined));
  return clock;
}
