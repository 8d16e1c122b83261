/**
 * Flows kept in container images (Docker storage): when the flow version's storage answers
 * `containerImage(location)`, the task definition runs that image by digest instead of the runner
 * image; its platform must match the task's CPU architecture and an ECR image needs the execution
 * role, both refused before any ECS call. The storage here is a small stand-in for DockerStorage.
 */
import {
  DescribeTaskDefinitionCommand,
  RegisterTaskDefinitionCommand,
  type RegisterTaskDefinitionCommandInput,
  RunTaskCommand,
  type Task,
} from "@aws-sdk/client-ecs";
import { MemoryStorage, type Storage } from "@tern/core";
import {
  EnvironmentError,
  type FlowImage,
  type FlowVersionRecord,
  type JsonValue,
  type SetupContext,
} from "@tern/core/plugin";
import { beforeEach, describe, expect, it, vi } from "vitest";
import "aws-sdk-client-mock-vitest/extend";
import {
  bootstrapCommand,
  clearDefinitionCache,
  diagnoseStoppedTask,
  type EcsDeployment,
  FargateTaskEnvironment,
  type FargateTaskEnvironmentOptions,
  HASH_TAG,
  resolveConfig,
  TASK_DEFINITION_ANNOTATION,
} from "../../src/index.js";
import {
  ACCOUNT,
  AGENT_ENV,
  DEPLOYMENT,
  ecs,
  executeContext,
  flowVersion as flowVersionRecord,
  manifest,
  noSuchDefinition,
  OPTIONS,
  runRecord,
  storage as storageWithoutHook,
  TASK_ARN,
  TD_ARN,
} from "./fixtures.js";

const REGISTRY = `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com`;
const digest = (hex: string) => `sha256:${hex.repeat(64 / hex.length)}`;
const IMAGE_V1: FlowImage = { reference: `${REGISTRY}/tern-flows@${digest("1")}`, platform: "linux/amd64" };
const IMAGE_V2: FlowImage = { reference: `${REGISTRY}/tern-flows@${digest("2")}`, platform: "linux/amd64" };
const ARM_IMAGE: FlowImage = { reference: `${REGISTRY}/tern-flows@${digest("3")}`, platform: "linux/arm64" };
const EXECUTION_ROLE = `arn:aws:iam::${ACCOUNT}:role/tern-execution`;
/** The fixtures' options (a ghcr.io runner image, no logs) with the execution role an ECR pull needs. */
const WITH_ROLE: FargateTaskEnvironmentOptions = { ...OPTIONS, executionRoleArn: EXECUTION_ROLE };
const SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const BUNDLE = "s3://cdk-hnb659fds-assets-123456789012-eu-west-1/runner/9f86d081.mjs";

/** A storage that keeps flow versions in images: the image of each location it was given. */
class ImageStorage extends MemoryStorage {
  readonly asked: string[] = [];
  constructor(readonly images: Readonly<Record<string, FlowImage>>) {
    super({ name: "flow-images" });
  }

  override containerImage(location: string): FlowImage | undefined {
    this.asked.push(location);
    return this.images[location];
  }
}

const V1 = "tern-flows@v1";
const V2 = "tern-flows@v2";

function flowVersion(version: number, location: string, annotations?: Record<string, JsonValue>): FlowVersionRecord {
  return flowVersionRecord({
    version,
    location,
    storage: { type: "DockerStorage", options: {} },
    ...(annotations === undefined ? {} : { annotations }),
  });
}

function setupContext(version: FlowVersionRecord) {
  const annotate = vi.fn(async (_: Readonly<Record<string, JsonValue>>) => {});
  const context: SetupContext = { flowVersion: version, manifest, annotate };
  return { context, annotate };
}

/** Registrations answer revisions 7, 8, 9... of tern-etl. */
function stubRegistrations(): void {
  let revision = 7;
  ecs.on(DescribeTaskDefinitionCommand).rejects(noSuchDefinition());
  ecs.on(RegisterTaskDefinitionCommand).callsFake(async () => ({
    taskDefinition: { taskDefinitionArn: `arn:aws:ecs:eu-west-1:${ACCOUNT}:task-definition/tern-etl:${revision++}` },
  }));
}

function registered(): RegisterTaskDefinitionCommandInput[] {
  return ecs.commandCalls(RegisterTaskDefinitionCommand).map((call) => call.args[0].input);
}

const hashOf = (input: RegisterTaskDefinitionCommandInput | undefined) =>
  input?.tags?.find((tag) => tag.key === HASH_TAG)?.value;

/** What setup throws, after checking that it is an EnvironmentError. */
async function refusal(env: FargateTaskEnvironment, storage: Storage, version: FlowVersionRecord): Promise<string> {
  const error = await env.setup(storage, setupContext(version).context).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EnvironmentError);
  return (error as Error).message;
}

beforeEach(() => {
  ecs.reset();
  clearDefinitionCache();
});

describe("a flow kept in an image", () => {
  it("is the task definition's container image, by digest; the rest of the definition stays", async () => {
    stubRegistrations();
    const images = new ImageStorage({ [V1]: IMAGE_V1 });
    const env = new FargateTaskEnvironment(WITH_ROLE);
    const { context, annotate } = setupContext(flowVersion(1, V1));
    await env.setup(images, context);
    expect(images.asked).toEqual([V1]);
    const [input] = registered();
    expect(input).toMatchObject({
      family: "tern-etl",
      executionRoleArn: EXECUTION_ROLE,
      runtimePlatform: { cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" },
      containerDefinitions: [{ name: "tern-runner", image: IMAGE_V1.reference, command: ["tern", "execute"] }],
    });
    expect(JSON.stringify(input)).not.toContain(OPTIONS.image);
    // The annotation remembers the revision with the hash of the definition that runs the image.
    expect(annotate).toHaveBeenCalledWith({
      [TASK_DEFINITION_ANNOTATION]: { hash: hashOf(input), arn: TD_ARN, region: "eu-west-1" },
    });
  });

  it("keeps the runner bootstrap and the runner bundle's sha256 in the definition", async () => {
    stubRegistrations();
    const env = new FargateTaskEnvironment({ ...WITH_ROLE, runnerBundle: BUNDLE, runnerBundleSha256: SHA });
    await env.setup(new ImageStorage({ [V1]: IMAGE_V1 }), setupContext(flowVersion(1, V1)).context);
    const container = registered()[0]?.containerDefinitions?.[0];
    expect(container?.image).toBe(IMAGE_V1.reference);
    expect(container?.command).toEqual(bootstrapCommand());
    expect(container?.environment).toContainEqual({ name: "TERN_RUNNER_SHA256", value: SHA });
  });

  it("is launched by execute (which sets up first) and recorded on the run's deployment", async () => {
    stubRegistrations();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const env = new FargateTaskEnvironment(WITH_ROLE);
    const deployment = await env.execute(
      new ImageStorage({ [V1]: IMAGE_V1 }),
      V1,
      executeContext({ flowVersion: flowVersion(1, V1), run: runRecord({ version: 1 }) }),
    );
    expect(registered()[0]?.containerDefinitions?.[0]?.image).toBe(IMAGE_V1.reference);
    expect(ecs).toHaveReceivedCommandWith(RunTaskCommand, { taskDefinition: TD_ARN });
    expect(deployment.details).toMatchObject({ taskArn: TASK_ARN, flowImage: IMAGE_V1.reference });
  });

  it("two versions in two images get two revisions; the same image again registers nothing", async () => {
    stubRegistrations();
    const images = new ImageStorage({ [V1]: IMAGE_V1, [V2]: IMAGE_V2 });
    const first = setupContext(flowVersion(1, V1));
    const second = setupContext(flowVersion(2, V2));
    await new FargateTaskEnvironment(WITH_ROLE).setup(images, first.context);
    await new FargateTaskEnvironment(WITH_ROLE).setup(images, second.context);
    const [one, two] = registered();
    expect(registered()).toHaveLength(2);
    expect(one?.containerDefinitions?.[0]?.image).toBe(IMAGE_V1.reference);
    expect(two?.containerDefinitions?.[0]?.image).toBe(IMAGE_V2.reference);
    expect(hashOf(one)).not.toBe(hashOf(two));
    const arnOf = (annotate: typeof first.annotate) =>
      (annotate.mock.calls[0]?.[0]?.[TASK_DEFINITION_ANNOTATION] as { arn?: string } | undefined)?.arn;
    expect(arnOf(first.annotate)).toBe(`arn:aws:ecs:eu-west-1:${ACCOUNT}:task-definition/tern-etl:7`);
    expect(arnOf(second.annotate)).toBe(`arn:aws:ecs:eu-west-1:${ACCOUNT}:task-definition/tern-etl:8`);
    // Version 1 again (another run of it): this process knows its revision.
    await new FargateTaskEnvironment(WITH_ROLE).setup(images, setupContext(flowVersion(1, V1)).context);
    expect(registered()).toHaveLength(2);
  });

  it("execute of another version than the one set up runs that version's image", async () => {
    stubRegistrations();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const images = new ImageStorage({ [V1]: IMAGE_V1, [V2]: IMAGE_V2 });
    const env = new FargateTaskEnvironment(WITH_ROLE);
    await env.setup(images, setupContext(flowVersion(1, V1)).context);
    await env.execute(images, V2, executeContext({ flowVersion: flowVersion(2, V2), run: runRecord({ version: 2 }) }));
    expect(registered().map((input) => input.containerDefinitions?.[0]?.image)).toEqual([
      IMAGE_V1.reference,
      IMAGE_V2.reference,
    ]);
    expect(ecs).toHaveReceivedCommandWith(RunTaskCommand, {
      taskDefinition: `arn:aws:ecs:eu-west-1:${ACCOUNT}:task-definition/tern-etl:8`,
    });
  });

  it.each([
    { storage: "without the hook (an older tern's, a user's object)", make: () => storageWithoutHook },
    { storage: "of bundles (the base class answers undefined)", make: () => new MemoryStorage() },
    { storage: "that has no image for this location", make: () => new ImageStorage({ [V2]: IMAGE_V2 }) },
  ])("a storage $storage keeps the runner image", async ({ make }) => {
    stubRegistrations();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const env = new FargateTaskEnvironment(OPTIONS);
    const storage = make();
    await env.setup(storage, setupContext(flowVersion(1, V1)).context);
    expect(registered()[0]?.containerDefinitions?.[0]?.image).toBe(OPTIONS.image);
    const deployment = await env.execute(storage, V1, executeContext({ flowVersion: flowVersion(1, V1) }));
    expect(registered()).toHaveLength(1);
    expect(deployment.details).not.toHaveProperty("flowImage");
  });

  it("an annotated revision is trusted only when it runs the flow's image", async () => {
    stubRegistrations();
    const images = new ImageStorage({ [V1]: IMAGE_V1 });
    await new FargateTaskEnvironment(WITH_ROLE).setup(images, setupContext(flowVersion(1, V1)).context);
    const [input] = registered();
    const hash = hashOf(input);
    if (input === undefined || hash === undefined) throw new Error("nothing was registered");
    const { tags: _tags, ...content } = input;
    const annotated = { [TASK_DEFINITION_ANNOTATION]: { hash, arn: TD_ARN, region: "eu-west-1" } };
    const describedAs = (image: string) => {
      ecs.reset();
      clearDefinitionCache();
      ecs.on(DescribeTaskDefinitionCommand, { taskDefinition: TD_ARN }).resolves({
        taskDefinition: {
          ...content,
          containerDefinitions: [{ ...content.containerDefinitions?.[0], image }],
          taskDefinitionArn: TD_ARN,
          status: "ACTIVE",
        },
        tags: [{ key: HASH_TAG, value: hash }],
      });
    };
    describedAs(IMAGE_V1.reference);
    const trusted = new FargateTaskEnvironment(WITH_ROLE);
    await trusted.setup(images, setupContext(flowVersion(1, V1, annotated)).context);
    expect(trusted.taskDefinitionArn).toBe(TD_ARN);
    expect(ecs).not.toHaveReceivedCommand(RegisterTaskDefinitionCommand);

    // The same hash tag on a revision that runs the runner image: not run, registered again.
    describedAs(OPTIONS.image as string);
    ecs.on(DescribeTaskDefinitionCommand, { taskDefinition: "tern-etl" }).rejects(noSuchDefinition());
    ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: `${TD_ARN}0` } });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const replaced = new FargateTaskEnvironment(WITH_ROLE);
    await replaced.setup(images, setupContext(flowVersion(1, V1, annotated)).context);
    expect(warn.mock.calls[0]?.[0]).toMatch(/its content differs from the configuration/);
    warn.mockRestore();
    expect(replaced.taskDefinitionArn).toBe(`${TD_ARN}0`);
    expect(registered()[0]?.containerDefinitions?.[0]?.image).toBe(IMAGE_V1.reference);
  });
});

describe("a flow image refused before any ECS call", () => {
  it("built for another platform than the task's CPU architecture: names both and both fixes", async () => {
    const arm = await refusal(
      new FargateTaskEnvironment(WITH_ROLE),
      new ImageStorage({ [V1]: ARM_IMAGE }),
      flowVersion(1, V1),
    );
    expect(arm).toContain(ARM_IMAGE.reference);
    expect(arm).toMatch(/built for linux\/arm64, but the task's cpuArchitecture is "X86_64" \(linux\/amd64\)/);
    expect(arm).toMatch(/DockerStorage's platform: "linux\/amd64"/);
    expect(arm).toMatch(/cpuArchitecture: "ARM64"/);

    const amd = await refusal(
      new FargateTaskEnvironment({ ...WITH_ROLE, runtimePlatform: { cpuArchitecture: "ARM64" } }),
      new ImageStorage({ [V1]: IMAGE_V1 }),
      flowVersion(1, V1),
    );
    expect(amd).toMatch(/built for linux\/amd64, but the task's cpuArchitecture is "ARM64" \(linux\/arm64\)/);
    expect(amd).toMatch(/DockerStorage's platform: "linux\/arm64"/);
    expect(ecs.calls()).toHaveLength(0);
  });

  it("in ECR with no execution role: names the image, the option and the variable", async () => {
    const message = await refusal(
      new FargateTaskEnvironment(OPTIONS),
      new ImageStorage({ [V1]: IMAGE_V1 }),
      flowVersion(1, V1),
    );
    expect(message).toContain(`no executionRoleArn: the flow's image ${IMAGE_V1.reference} is in Amazon ECR`);
    expect(message).toMatch(/Pass executionRoleArn in the environment's options, or set TERN_ECS_EXECUTION_ROLE_ARN/);
    expect(ecs.calls()).toHaveLength(0);
  });

  it("outside ECR, no execution role is needed", async () => {
    stubRegistrations();
    const elsewhere: FlowImage = { reference: `ghcr.io/acme/flows@${digest("4")}`, platform: "linux/amd64" };
    await new FargateTaskEnvironment(OPTIONS).setup(
      new ImageStorage({ [V1]: elsewhere }),
      setupContext(flowVersion(1, V1)).context,
    );
    expect(registered()[0]).not.toHaveProperty("executionRoleArn");
    expect(registered()[0]?.containerDefinitions?.[0]?.image).toBe(elsewhere.reference);
  });

  it.each([
    {
      what: "a tag instead of a digest",
      image: { reference: `${REGISTRY}/tern-flows:etl-1`, platform: "linux/amd64" },
      pattern: /tern-flows:etl-1", which is not pinned by digest/,
    },
    {
      what: "a platform Fargate does not run",
      image: { reference: IMAGE_V1.reference, platform: "linux/arm/v7" },
      pattern: /built for platform "linux\/arm\/v7", and Fargate runs linux\/amd64 .* and linux\/arm64/,
    },
  ])("$what", async ({ image, pattern }) => {
    const message = await refusal(
      new FargateTaskEnvironment(WITH_ROLE),
      new ImageStorage({ [V1]: image }),
      flowVersion(1, V1),
    );
    expect(message).toMatch(pattern);
    expect(ecs.calls()).toHaveLength(0);
  });
});

describe("the agent's runner image, with a flow image", () => {
  it("is neither needed nor checked: the flow's image and its platform decide", () => {
    const { TERN_RUNNER_IMAGE: _image, ...withoutImage } = AGENT_ENV;
    const options = new FargateTaskEnvironment({ runtimePlatform: { cpuArchitecture: "ARM64" } }).options;
    const env = {
      ...AGENT_ENV,
      // An amd64-only runner image: ARM64 is refused for it, not for an arm64 flow image.
      TERN_RUNNER_IMAGE: `${REGISTRY}/tern-runner:1-amd64`,
      TERN_RUNNER_IMAGE_ARCHITECTURES: "X86_64",
    };
    expect(() => resolveConfig(options, "etl", env)).toThrow(EnvironmentError);
    expect(resolveConfig(options, "etl", env, { flowImage: ARM_IMAGE })).toMatchObject({
      image: ARM_IMAGE.reference,
      flowImage: ARM_IMAGE,
      cpuArchitecture: "ARM64",
    });
    expect(resolveConfig(options, "etl", withoutImage, { flowImage: ARM_IMAGE }).image).toBe(ARM_IMAGE.reference);
  });
});

describe("the reconciler's reasons for a flow image", () => {
  const deployment: EcsDeployment = { ...DEPLOYMENT, flowImage: IMAGE_V1.reference };
  const task = (reason: string): Task => ({
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    stopCode: "TaskFailedToStart",
    stoppedReason: reason,
    containers: [{ name: "tern-runner", image: IMAGE_V1.reference, lastStatus: "STOPPED", reason }],
  });

  it("a failed pull names the flow's image, its repository's lifecycle and the execution role", () => {
    const { reason } = diagnoseStoppedTask(
      task(`CannotPullContainerError: failed to resolve ref ${IMAGE_V1.reference}: not found`),
      deployment,
    );
    expect(reason).toContain(`could not pull the flow's image ${IMAGE_V1.reference}: CannotPullContainerError`);
    expect(reason).toMatch(/lifecycle rule/);
    expect(reason).toMatch(/execution role may pull it/);
  });

  it("a platform failure points at DockerStorage's platform option", () => {
    const { reason } = diagnoseStoppedTask(
      task("CannotPullContainerError: no matching manifest for linux/arm64 in the manifest list entries"),
      deployment,
    );
    expect(reason).toContain(`could not run the flow's image ${IMAGE_V1.reference} on this CPU architecture`);
    expect(reason).toMatch(/DockerStorage's platform option/);
  });

  it("the runner image keeps its own words", () => {
    const { reason } = diagnoseStoppedTask(task("CannotPullContainerError: failed to resolve ref x"), DEPLOYMENT);
    expect(reason).toMatch(/could not pull the runner image/);
  });
});
