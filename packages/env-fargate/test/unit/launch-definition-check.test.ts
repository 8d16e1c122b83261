/**
 * The task-definition ARN annotated on a flow version is checked before it is run: same account
 * and Region as the agent's cluster, the configuration's family, ACTIVE, and its content-hash tag
 * equal to the configuration's hash. A bad one is re-registered (or found), never run.
 */
import {
  DescribeTaskDefinitionCommand,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
  type RegisterTaskDefinitionCommandInput,
  RunTaskCommand,
} from "@aws-sdk/client-ecs";
import type { FlowVersionRecord, JsonValue } from "@tern/core/plugin";
import { beforeEach, describe, expect, it, vi } from "vitest";
import {
  clearDefinitionCache,
  FargateTaskEnvironment,
  type FargateTaskEnvironmentOptions,
  HASH_TAG,
  TASK_DEFINITION_ANNOTATION,
} from "../../src/index.js";
import {
  ACCOUNT,
  OPTIONS as BASE_OPTIONS,
  ecs,
  executeContext,
  flowVersion as flowVersionRecord,
  TD_ARN as GOOD_ARN,
  manifest,
  noSuchDefinition,
  runRecord,
  storage,
  stubNewDefinition,
  TASK_ARN,
} from "./fixtures.js";

const NEW_ARN = `arn:aws:ecs:eu-west-1:${ACCOUNT}:task-definition/tern-etl:8`;
const OPTIONS: FargateTaskEnvironmentOptions = {
  ...BASE_OPTIONS,
  cluster: `arn:aws:ecs:eu-west-1:${ACCOUNT}:cluster/tern`,
};

function flowVersion(annotations?: Record<string, JsonValue>): FlowVersionRecord {
  return flowVersionRecord(annotations === undefined ? {} : { annotations });
}

const run = runRecord({ id: "5b1c2b9e-8d7a-4c6b-9e5f-0a1b2c3d4e5f" });

/** The definition and hash tag this configuration registers, learnt from a first registration. */
async function desired(): Promise<{ input: RegisterTaskDefinitionCommandInput; hash: string }> {
  stubNewDefinition(GOOD_ARN);
  await new FargateTaskEnvironment(OPTIONS).setup(storage, {
    flowVersion: flowVersion(),
    manifest,
    annotate: async () => {},
  });
  const input = ecs.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input as RegisterTaskDefinitionCommandInput;
  const hash = input.tags?.find((tag) => tag.key === HASH_TAG)?.value as string;
  ecs.reset();
  clearDefinitionCache();
  return { input, hash };
}

/** Sets up with `arn` annotated (for the configuration's hash), DescribeTaskDefinition answering `described`, and launches. */
async function launchWith(
  arn: string,
  described: (input: RegisterTaskDefinitionCommandInput, hash: string) => object | Error,
) {
  const { input, hash } = await desired();
  const answer = described(input, hash);
  if (answer instanceof Error) ecs.on(DescribeTaskDefinitionCommand, { taskDefinition: arn }).rejects(answer);
  else ecs.on(DescribeTaskDefinitionCommand, { taskDefinition: arn }).resolves(answer);
  // The family's newest revision: not the content (so the agent registers a new one).
  ecs.on(DescribeTaskDefinitionCommand, { taskDefinition: "tern-etl" }).rejects(noSuchDefinition());
  ecs.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [] });
  ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: NEW_ARN } });
  ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
  const annotate = vi.fn(async (_: Readonly<Record<string, JsonValue>>) => {});
  const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
  const env = new FargateTaskEnvironment(OPTIONS);
  const version = flowVersion({ [TASK_DEFINITION_ANNOTATION]: { hash, arn, region: "eu-west-1" } });
  let warnings: string[] = [];
  try {
    await env.setup(storage, { flowVersion: version, manifest, annotate });
    await env.execute(storage, "loc", executeContext({ run, flowVersion: version }));
    warnings = warn.mock.calls.map((call) => String(call[0]));
  } finally {
    warn.mockRestore();
  }
  return {
    ranWith: ecs.commandCalls(RunTaskCommand).map((call) => call.args[0].input.taskDefinition),
    registered: ecs.commandCalls(RegisterTaskDefinitionCommand).length,
    annotate,
    warnings,
  };
}

const active = (input: RegisterTaskDefinitionCommandInput, hash: string, arn = GOOD_ARN) => ({
  taskDefinition: { ...input, taskDefinitionArn: arn, status: "ACTIVE" },
  tags: [{ key: HASH_TAG, value: hash }],
});

beforeEach(() => {
  ecs.reset();
  clearDefinitionCache();
});

describe("the annotated task definition", () => {
  it("is run when it passes every check (one DescribeTaskDefinition with its tags)", async () => {
    const result = await launchWith(GOOD_ARN, (input, hash) => active(input, hash));
    expect(result.ranWith).toEqual([GOOD_ARN]);
    expect(result.registered).toBe(0);
    expect(ecs.commandCalls(DescribeTaskDefinitionCommand)[0]?.args[0].input).toEqual({
      taskDefinition: GOOD_ARN,
      include: ["TAGS"],
    });
    expect(result.annotate).not.toHaveBeenCalled();
  });

  it.each([
    ["another account", `arn:aws:ecs:eu-west-1:999999999999:task-definition/tern-etl:7`, /account 999999999999/],
    ["another Region", `arn:aws:ecs:us-east-1:${ACCOUNT}:task-definition/tern-etl:7`, /Region us-east-1/],
    ["another family", `arn:aws:ecs:eu-west-1:${ACCOUNT}:task-definition/attacker-box:1`, /family attacker-box/],
    ["not an ARN", "tern-etl:7", /not a task-definition ARN/],
  ])("from %s is re-registered, never run, without describing it", async (_, arn, why) => {
    const result = await launchWith(arn, (input, hash) => active(input, hash, arn));
    expect(result.ranWith).toEqual([NEW_ARN]);
    expect(result.registered).toBe(1);
    expect(ecs.commandCalls(DescribeTaskDefinitionCommand, { taskDefinition: arn })).toHaveLength(0);
    expect(result.annotate).toHaveBeenCalledWith({
      [TASK_DEFINITION_ANNOTATION]: expect.objectContaining({ arn: NEW_ARN }),
    });
    expect(result.warnings[0]).toMatch(why);
  });

  it("whose hash tag is another configuration's is re-registered, never run", async () => {
    const result = await launchWith(GOOD_ARN, (input) => active(input, "f".repeat(64)));
    expect(result.ranWith).toEqual([NEW_ARN]);
    expect(result.registered).toBe(1);
    expect(result.warnings[0]).toMatch(/tern:content-hash|tag is not the configuration's hash/);
  });

  it("with the right tag but other content (an image swapped in) is re-registered, never run", async () => {
    const result = await launchWith(GOOD_ARN, (input, hash) => {
      const answer = active(input, hash);
      const [container] = answer.taskDefinition.containerDefinitions ?? [];
      return {
        ...answer,
        taskDefinition: { ...answer.taskDefinition, containerDefinitions: [{ ...container, image: "evil:latest" }] },
      };
    });
    expect(result.ranWith).toEqual([NEW_ARN]);
    expect(result.warnings[0]).toMatch(/content differs/);
  });

  it("that is INACTIVE or cannot be described is re-registered, never run", async () => {
    const inactive = await launchWith(GOOD_ARN, (input, hash) => ({
      ...active(input, hash),
      taskDefinition: { ...active(input, hash).taskDefinition, status: "INACTIVE" },
    }));
    expect(inactive.ranWith).toEqual([NEW_ARN]);
    ecs.reset();
    clearDefinitionCache();
    const gone = await launchWith(GOOD_ARN, () => noSuchDefinition());
    expect(gone.ranWith).toEqual([NEW_ARN]);
  });
});
