/**
 * A behaviour-faithful fake of Amazon ECS for tests: an HTTP server speaking ECS's awsJson1_1
 * protocol, so the real `@aws-sdk/client-ecs` talks to it (through `endpoint` or
 * `AWS_ENDPOINT_URL_ECS`), that runs each task's essential container as a local child process.
 * The entry point; the modules are under fake-ecs/ (the service, task definitions, clusters,
 * RunTask, the task queries, the task lifecycle, client tokens, throttling, clock, validation,
 * errors, the HTTP side).
 *
 * What it models, what it does not and where each wording comes from: see test/README.md.
 *
 * @example
 * const fake = await FakeEcs.start({ runner: { command: [process.execPath] } });
 * const ecs = new ECSClient({ endpoint: fake.endpoint, region: "us-east-1", credentials });
 * // ... RegisterTaskDefinition, RunTask, DescribeTasks ...
 * await fake.close();
 */
export { CLIENT_TOKEN_TTL_MS } from "./fake-ecs/client-tokens.js";
export { type FakeEcsClock, ManualClock, type ScaledClock, scaledClock } from "./fake-ecs/clock.js";
export { ECS_MESSAGES, FAKE_ECS_ACCOUNT_ID } from "./fake-ecs/errors.js";
export { FakeEcs } from "./fake-ecs/service.js";
export {
  type BucketLimits,
  ECS_THROTTLING_DEFAULTS,
  type FakeEcsThrottlingOptions,
  RATE_EXCEEDED,
} from "./fake-ecs/throttle.js";
export type {
  FakeEcsCall,
  FakeEcsOperation,
  FakeEcsOptions,
  FakeEcsRunner,
  FakeTask,
  LaunchOutcome,
  RunTaskFailure,
  StopCodeInjection,
} from "./fake-ecs/types.js";
