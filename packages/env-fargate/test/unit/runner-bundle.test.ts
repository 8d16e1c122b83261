import { RegisterTaskDefinitionCommand, RunTaskCommand, type Task } from "@aws-sdk/client-ecs";
import type { Storage } from "@tern/core";
import {
  EnvironmentError,
  type ExecuteContext,
  type JsonValue,
  type RunRecord,
  type RunState,
} from "@tern/core/plugin";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import "aws-sdk-client-mock-vitest/extend";
import {
  BOOTSTRAP,
  BOOTSTRAP_EXIT,
  clearDefinitionCache,
  decideRun,
  definitionHash,
  desiredTaskDefinition,
  type EcsDeployment,
  FargateTaskEnvironment,
  type FargateTaskEnvironmentOptions,
  MAX_OVERRIDES_CHARS,
  RUNNER_COMMAND,
  resolveConfig,
  setS3ClientFactory,
  startupFailure,
} from "../../src/index.js";
import {
  AGENT_ENV as BASE_AGENT_ENV,
  DEPLOYMENT as BASE_DEPLOYMENT,
  OPTIONS as BASE_OPTIONS,
  ecs,
  executeContext,
  flowVersion,
  NOW,
  rejects,
  runRecord,
  storage,
  stubNewDefinition,
  TASK_ARN,
} from "./fixtures.js";

const SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const BUNDLE = "s3://cdk-hnb659fds-assets-123456789012-eu-west-1/runner/9f86d081.mjs";
const AGENT_ENV = {
  ...BASE_AGENT_ENV,
  TERN_RUNNER_IMAGE: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecr-public/docker/library/node:22",
};
const WITH_BUNDLE = { ...AGENT_ENV, TERN_RUNNER_BUNDLE: BUNDLE, TERN_RUNNER_BUNDLE_SHA256: SHA };

describe("runner bundle options", () => {
  it("takes the bundle and its sha256 as a pair, from the options or from the agent's environment", () => {
    const given = new FargateTaskEnvironment({ runnerBundle: BUNDLE, runnerBundleSha256: SHA.toUpperCase() });
    expect(given.options).toEqual({ runnerBundle: BUNDLE, runnerBundleSha256: SHA });
    expect(resolveConfig(given.options, "etl", AGENT_ENV).runner).toEqual({
      bucket: "cdk-hnb659fds-assets-123456789012-eu-west-1",
      key: "runner/9f86d081.mjs",
      sha256: SHA,
    });
    const fromEnv = resolveConfig(new FargateTaskEnvironment().options, "etl", WITH_BUNDLE);
    expect(fromEnv.runner?.sha256).toBe(SHA);
    expect(resolveConfig(new FargateTaskEnvironment().options, "etl", AGENT_ENV).runner).toBeUndefined();
    // "none": the image's own tern execute, whatever the agent's default.
    const none = new FargateTaskEnvironment({ runnerBundle: "none" });
    expect(resolveConfig(none.options, "etl", WITH_BUNDLE).runner).toBeUndefined();
  });

  it("refuses bad values, naming the value and the fix", () => {
    rejects(
      { runnerBundle: "https://example.com/runner.mjs", runnerBundleSha256: SHA },
      /runnerBundle: "https:\/\/example\.com\/runner\.mjs" is not a runner bundle location: give s3:\/\/<bucket>\/<key>/,
    );
    rejects({ runnerBundle: "s3://Bad_Bucket/k", runnerBundleSha256: SHA }, /"s3:\/\/Bad_Bucket\/k" is not a runner/);
    rejects({ runnerBundle: "s3://bucket/", runnerBundleSha256: SHA }, /is not a runner bundle location/);
    rejects(
      { runnerBundle: BUNDLE, runnerBundleSha256: "abc123" },
      /runnerBundleSha256: "abc123" is not a sha256: give the bundle's 64 hex digits/,
    );
    rejects({ runnerBundle: BUNDLE }, /runnerBundleSha256: missing: .*give both or neither/);
    rejects({ runnerBundleSha256: SHA }, /runnerBundle: missing: runnerBundleSha256 is given/);
    rejects({ runnerBundle: "none", runnerBundleSha256: SHA }, /runnerBundleSha256: remove it: runnerBundle is "none"/);
    rejects({ environment: { TERN_RUNNER_URL: "x" } }, /environment\.TERN_RUNNER_URL: tern sets this variable/);
    rejects({ environment: { TERN_RUNNER_SHA256: SHA } }, /environment\.TERN_RUNNER_SHA256: tern sets this variable/);
  });

  it("refuses half a pair or a bad value in the agent's environment, naming the variables", () => {
    const options = new FargateTaskEnvironment().options;
    expect(() => resolveConfig(options, "etl", { ...AGENT_ENV, TERN_RUNNER_BUNDLE: BUNDLE })).toThrow(
      /TERN_RUNNER_BUNDLE is set where the agent runs but TERN_RUNNER_BUNDLE_SHA256 is not: set both/,
    );
    expect(() => resolveConfig(options, "etl", { ...AGENT_ENV, TERN_RUNNER_BUNDLE_SHA256: SHA })).toThrow(
      /TERN_RUNNER_BUNDLE_SHA256 is set where the agent runs but TERN_RUNNER_BUNDLE is not/,
    );
    expect(() => resolveConfig(options, "etl", { ...WITH_BUNDLE, TERN_RUNNER_BUNDLE_SHA256: "0".repeat(63) })).toThrow(
      /runnerBundleSha256: "0{63}" is not a sha256.*\(defaults read from .*TERN_RUNNER_BUNDLE_SHA256/,
    );
  });
});

describe("the task definition with and without a runner bundle", () => {
  it("runs the bootstrap with TERN_RUNNER_SHA256 when a bundle is configured, tern execute otherwise", () => {
    const env = new FargateTaskEnvironment({ environment: { LOG_LEVEL: "debug" } });
    const plain = desiredTaskDefinition(resolveConfig(env.options, "etl", AGENT_ENV));
    const bundled = desiredTaskDefinition(resolveConfig(env.options, "etl", WITH_BUNDLE));
    expect(plain.containerDefinitions[0]).toMatchObject({
      command: [...RUNNER_COMMAND],
      environment: [{ name: "LOG_LEVEL", value: "debug" }],
    });
    expect(bundled.containerDefinitions[0]).toMatchObject({
      image: AGENT_ENV.TERN_RUNNER_IMAGE,
      command: ["node", "--input-type=module", "-e", BOOTSTRAP],
      environment: [
        { name: "LOG_LEVEL", value: "debug" },
        { name: "TERN_RUNNER_SHA256", value: SHA },
      ],
    });
    // A new bundle is a new revision; the same bundle, the same one.
    const other = desiredTaskDefinition(
      resolveConfig(env.options, "etl", { ...WITH_BUNDLE, TERN_RUNNER_BUNDLE_SHA256: "a".repeat(64) }),
    );
    expect(definitionHash(other, {})).not.toBe(definitionHash(bundled, {}));
    expect(definitionHash(desiredTaskDefinition(resolveConfig(env.options, "etl", WITH_BUNDLE)), {})).toBe(
      definitionHash(bundled, {}),
    );
  });

  it("keeps the bootstrap small and on Node's built-ins only, with its exit codes", () => {
    expect(BOOTSTRAP.length).toBeLessThan(4096);
    const imports = [...BOOTSTRAP.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.every((name) => name?.startsWith("node:"))).toBe(true);
    for (const code of Object.values(BOOTSTRAP_EXIT)) expect(BOOTSTRAP).toContain(`stop(${code}, `);
    expect(BOOTSTRAP).not.toMatch(/console\.\w+\([^)]*\burl\b/);
  });
});

describe("launching with a runner bundle", () => {
  const OPTIONS: FargateTaskEnvironmentOptions = {
    ...BASE_OPTIONS,
    image: AGENT_ENV.TERN_RUNNER_IMAGE,
    executionRoleArn: AGENT_ENV.TERN_ECS_EXECUTION_ROLE_ARN,
    runnerBundle: BUNDLE,
    runnerBundleSha256: SHA,
  };
  const context = (extra: Partial<ExecuteContext> = {}): ExecuteContext =>
    executeContext({ flowVersion: flowVersion({ version: 3 }), run: runRecord({ version: 3 }), ...extra });
  let sessionToken: string | undefined;

  // (Set again before each test: it clears the clients, whose credentials are cached.)
  const useCredentials = () => {
    // Presigning is local computation with the agent's credentials (here: fixed ones).
    setS3ClientFactory(
      (region, { S3Client }) =>
        new S3Client({
          region,
          credentials: async () => ({
            accessKeyId: "AKIAIOSFODNN7EXAMPLE",
            secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ...(sessionToken === undefined ? {} : { sessionToken }),
          }),
        }),
    );
  };
  afterAll(() => setS3ClientFactory(undefined));
  beforeEach(() => {
    ecs.reset();
    clearDefinitionCache();
    sessionToken = undefined;
    useCredentials();
    // A family with no revision yet: the agent registers one.
    stubNewDefinition();
  });

  async function launch(extra: Partial<ExecuteContext> = {}) {
    const env = new FargateTaskEnvironment(OPTIONS);
    const deployment = await env.execute(storage, "loc", context(extra));
    return { env, deployment };
  }

  it("passes a GET URL of the bundle, presigned for an hour, as TERN_RUNNER_URL, and records only the sha256", async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const { deployment } = await launch();
    const registered = ecs.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input;
    expect(registered?.containerDefinitions?.[0]?.command).toEqual(["node", "--input-type=module", "-e", BOOTSTRAP]);
    const input = ecs.commandCalls(RunTaskCommand)[0]?.args[0].input;
    const environment = input?.overrides?.containerOverrides?.[0]?.environment ?? [];
    expect(environment.map((e) => e.name)).toEqual(["TERN_RUN_ID", "TERN_BACKEND", "TERN_RUNNER_URL"]);
    const url = new URL(environment[2]?.value as string);
    expect(url.host).toBe("cdk-hnb659fds-assets-123456789012-eu-west-1.s3.eu-west-1.amazonaws.com");
    expect(url.pathname).toBe("/runner/9f86d081.mjs");
    expect(url.searchParams.get("X-Amz-Expires")).toBe("3600");
    expect(url.searchParams.get("X-Amz-Credential")).toMatch(
      /^AKIAIOSFODNN7EXAMPLE\/\d{8}\/eu-west-1\/s3\/aws4_request$/,
    );
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(url.searchParams.get("x-id")).toBe("GetObject");
    expect(deployment.details).toMatchObject({ runnerBundleSha256: SHA, taskArn: TASK_ARN });
    expect(JSON.stringify(deployment.details)).not.toContain("X-Amz");
  });

  it("sends the same URL on every attempt of one launch, and never writes it to the agent's output", async () => {
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({ tasks: [], failures: [{ reason: "Capacity is unavailable at this time" }] })
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const output: string[] = [];
    await launch({ onOutput: (line) => output.push(line) });
    const urls = ecs
      .commandCalls(RunTaskCommand)
      .map((call) => call.args[0].input.overrides?.containerOverrides?.[0]?.environment?.[2]?.value);
    expect(urls).toHaveLength(2);
    expect(urls[1]).toBe(urls[0]);
    expect(output.join("\n")).toMatch(/RunTask attempt 1 of 5/);
    expect(output.join("\n")).not.toContain("X-Amz");
  });

  it("counts the URL in the 8,192-character overrides limit, and says so without showing it", async () => {
    // Temporary credentials (the agent's Lambda role) add their session token to the URL.
    sessionToken = "IQoJb3JpZ2luX2VjE".padEnd(1200, "x");
    useCredentials();
    const backendUrl = `dynamodb://tern-state?region=eu-west-1&endpoint=${"x".repeat(7000)}`;
    // Without the bundle the same backend URL fits.
    const plain = new FargateTaskEnvironment({ ...OPTIONS, runnerBundle: "none", runnerBundleSha256: undefined });
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    await plain.execute({} as Storage, "loc", context({ backendUrl }));
    ecs.resetHistory();
    const error = await launch({ backendUrl }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnvironmentError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `take \\d+ characters; ECS allows ${MAX_OVERRIDES_CHARS}\\. The backend URL takes ${backendUrl.length} \\(dynamodb://tern-state\\?region=eu-west-1&endpoint=x+\\[\\.\\.\\.\\]\\)\\. The runner bundle's presigned URL takes \\d{4} of them`,
      ),
    );
    expect((error as Error).message).not.toContain("X-Amz");
    expect(ecs).not.toHaveReceivedCommand(RunTaskCommand);
  });
});

describe("start-up failures as run outcomes", () => {
  const DEPLOYMENT: EcsDeployment = { ...BASE_DEPLOYMENT, runnerBundleSha256: SHA };
  const exited = (exitCode: number): Task => ({
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    desiredStatus: "STOPPED",
    stopCode: "EssentialContainerExited",
    stoppedReason: "Essential container in task exited",
    containers: [{ name: "tern-runner", lastStatus: "STOPPED", exitCode }],
  });
  const run = (state: RunState, deployment: Partial<EcsDeployment> = {}): RunRecord =>
    ({
      id: "run-1",
      state,
      revision: 3,
      updatedAtMs: NOW - 10_000,
      deployment: { ...DEPLOYMENT, ...deployment } as unknown as Record<string, JsonValue>,
    }) as unknown as RunRecord;

  it("fails a Submitted run whose bootstrap refused the bundle, saying the integrity check failed", () => {
    expect(decideRun(run("Submitted"), exited(70), NOW).decision).toEqual({
      runId: "run-1",
      expectedRevision: 3,
      to: "Failed",
      reason: expect.stringMatching(
        new RegExp(
          `^the runner bundle's integrity check failed: ECS task 0123456789abcdef0123456789abcdef downloaded a bundle whose sha256 is not ${SHA} \\(exit code 70\\).*Redeploy the stack.*CloudWatch Logs group /tern/runs`,
        ),
      ),
    });
    expect(decideRun(run("Submitted"), exited(71), NOW).decision?.reason).toMatch(
      /could not download the runner bundle \(exit code 71.*expired launch URL/,
    );
    expect(decideRun(run("Submitted"), exited(72), NOW).decision?.reason).toMatch(
      /could not write or load the runner bundle \(exit code 72\): the image needs Node 20/,
    );
    expect(decideRun(run("Submitted"), exited(64), NOW).decision?.reason).toMatch(
      /exited with code 64 before the runner started: .*TERN_RUNNER_URL/,
    );
  });

  it("reads the codes only before the runner started, and 70 to 72 only from the bootstrap", () => {
    // Once the runner claimed the run, an exit code is the flow's.
    expect(decideRun(run("Running"), exited(70), NOW).decision?.reason).toMatch(
      /stopped \(Essential container in task exited\): the runner exited with code 70 before reporting/,
    );
    // Without a runner bundle the image's own tern runs: 70 means nothing special, 64 is entrypoint.sh's.
    const custom = run("Submitted", { runnerBundleSha256: undefined });
    expect(decideRun(custom, exited(70), NOW).decision?.reason).toMatch(/the runner exited with code 70/);
    expect(decideRun(custom, exited(64), NOW).decision?.reason).toMatch(
      /code 64 before the runner started: .*TERN_RUN_ID or TERN_BACKEND is missing/,
    );
    expect(startupFailure({ ...exited(70), stopCode: "UserInitiated" }, DEPLOYMENT)).toBeUndefined();
    expect(startupFailure(exited(1), DEPLOYMENT)).toBeUndefined();
    // A cancelled run stays cancelled.
    expect(decideRun(run("Cancelling"), exited(70), NOW).decision?.to).toBe("Cancelled");
  });
});
