/**
 * A task definition that could not be found or registered fails the setup with an
 * EnvironmentError that says, where it is made, whether the same setup may pass later: AWS's
 * refusals for now (throttling) yes, a bad request no.
 */
import { DescribeTaskDefinitionCommand, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import type { SetupContext } from "@tern/core/plugin";
import { beforeEach, describe, expect, it } from "vitest";
import { clearDefinitionCache, FargateTaskEnvironment } from "../../src/index.js";
import {
  ecs,
  flowVersion,
  manifest,
  noSuchDefinition,
  OPTIONS,
  storage,
  throttled,
  useRecordingLaunchClock,
} from "./fixtures.js";

const context: SetupContext = { flowVersion: flowVersion(), manifest, annotate: async () => {} };
const badCpu = () => Object.assign(new Error("Invalid 'cpu' setting for task."), { name: "ClientException" });

useRecordingLaunchClock();

beforeEach(() => {
  ecs.reset();
  clearDefinitionCache();
});

describe("task definition setup failures", () => {
  it.each([
    { failure: "throttled at every attempt", error: throttled, retryable: true },
    { failure: "refused as a bad request", error: badCpu, retryable: false },
  ])("registration $failure: retryable is $retryable", async ({ error, retryable }) => {
    ecs.on(DescribeTaskDefinitionCommand).rejects(noSuchDefinition());
    ecs.on(RegisterTaskDefinitionCommand).rejects(error());
    await expect(new FargateTaskEnvironment(OPTIONS).setup(storage, context)).rejects.toMatchObject({
      code: "ENVIRONMENT",
      message: expect.stringMatching(/registering task definition family tern-etl failed/),
      retryable,
    });
  });

  it.each([
    { failure: "throttled", error: throttled, retryable: true },
    { failure: "refused as a bad request", error: badCpu, retryable: false },
  ])("looking for a revision $failure: retryable is $retryable", async ({ error, retryable }) => {
    ecs.on(DescribeTaskDefinitionCommand).rejects(error());
    await expect(new FargateTaskEnvironment(OPTIONS).setup(storage, context)).rejects.toMatchObject({
      code: "ENVIRONMENT",
      message: expect.stringMatching(/describing task definition family tern-etl failed/),
      retryable,
    });
  });
});
