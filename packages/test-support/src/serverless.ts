/**
 * What the serverless tests and benchmarks share: the environment the CDK stack gives tern's
 * Lambda handlers, with local servers (DynamoDB Local, s3rver, the fake ECS) in place of AWS, and
 * the `ECS Task State Change` event EventBridge would deliver for a task.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ECSClient } from "@aws-sdk/client-ecs";
import { createTernTable, DynamoDbBackend } from "@tern/backend-dynamodb";
import { clearDefinitionCache, type LaunchClock, setEcsClientFactory, setLaunchClock } from "@tern/env-fargate";
import type { FakeEcs } from "./fake-ecs.js";
import { S3RVER_CREDENTIALS } from "./servers.js";

/** Where the local servers listen, and what differs between callers. */
export interface LocalServers {
  /** TERN_HOME of the handlers' process. */
  readonly home: string;
  readonly table: string;
  readonly dynamodbEndpoint: string;
  /** s3rver, for flows stored in S3 (@tern/test-support/fargate-flows). @default none */
  readonly s3Endpoint?: string;
  readonly ecsEndpoint: string;
  readonly image: string;
}

/** The handlers' environment variables as the stack sets them, pointed at the local servers. */
export function serverlessEnv(servers: LocalServers): Record<string, string> {
  return {
    TERN_HOME: servers.home,
    AWS_REGION: "us-east-1",
    // s3rver accepts only its own key pair; DynamoDB Local (-sharedDb) and the fake ECS take any.
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_ECS: servers.ecsEndpoint,
    // @tern/test-support/fargate-flows stores its flows in s3rver through this.
    ...(servers.s3Endpoint === undefined ? {} : { TERN_TEST_S3_ENDPOINT: servers.s3Endpoint }),
    TERN_BACKEND: `dynamodb://${servers.table}?region=us-east-1&endpoint=${servers.dynamodbEndpoint}`,
    TERN_ECS_CLUSTER: "tern",
    TERN_ECS_SUBNETS: "subnet-0123456789abcdef0",
    TERN_ECS_SECURITY_GROUPS: "sg-0123456789abcdef0",
    TERN_ECS_TASK_ROLE_ARN: "arn:aws:iam::123456789012:role/tern-task",
    TERN_ECS_EXECUTION_ROLE_ARN: "arn:aws:iam::123456789012:role/tern-execution",
    TERN_RUNNER_IMAGE: servers.image,
    TERN_LOG_GROUP: "/tern/runs",
  };
}

/** Sets variables in this process; resolves the function that puts the previous values back. */
export function setEnv(values: Readonly<Record<string, string>>): () => void {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  Object.assign(process.env, values);
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

/**
 * Makes this process a Fargate agent launching into `fake` on `clock`, as the throttling test and
 * benchmark need: the stack's environment for `table` (its DynamoDB endpoint only goes into the
 * tasks' overrides, which the fake never runs, so no server is needed), one ECS client without
 * SDK retries (every RunTask on the wire is then tern's own, paced and backed off on the launch
 * clock), no task definition cached from before, and `clock` as the launch clock. Returns the
 * function that undoes it all but the fake, which stays open.
 */
export function launchOnClock(
  fake: FakeEcs,
  clock: LaunchClock,
  env: { readonly home: string; readonly table: string; readonly image: string },
): () => void {
  const restoreEnv = setEnv(
    serverlessEnv({ ...env, dynamodbEndpoint: "http://127.0.0.1:8000", ecsEndpoint: fake.endpoint }),
  );
  const client = new ECSClient({
    region: "us-east-1",
    endpoint: fake.endpoint,
    credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
    maxAttempts: 1,
  });
  setEcsClientFactory(() => client);
  clearDefinitionCache();
  setLaunchClock(clock);
  return () => {
    setLaunchClock(undefined);
    setEcsClientFactory(undefined);
    client.destroy();
    restoreEnv();
  };
}

/** Creates the state table on DynamoDB Local and opens a backend on it (its URL names the endpoint). */
export async function openLocalTable(dynamodbEndpoint: string, table: string): Promise<DynamoDbBackend> {
  const client = new DynamoDBClient({ region: "us-east-1", endpoint: dynamodbEndpoint });
  try {
    await createTernTable(client, table);
  } finally {
    client.destroy();
  }
  return DynamoDbBackend.open({ table, region: "us-east-1", endpoint: dynamodbEndpoint });
}

/** An event as EventBridge delivers it (account 123456789012, us-east-1, now). */
export function eventBridgeEvent<Detail>(
  detailType: string,
  source: string,
  resources: readonly string[],
  detail: Detail,
  id: string = crypto.randomUUID(),
) {
  return {
    version: "0",
    id,
    "detail-type": detailType,
    source,
    account: "123456789012",
    time: new Date().toISOString(),
    region: "us-east-1",
    resources: [...resources],
    detail,
  };
}

/** The `Object Created` event EventBridge delivers for `key` put in `bucket` (the shape of AWS's documented sample). */
export function objectCreatedEvent(bucket: string, key: string, id?: string) {
  const detail = {
    version: "0",
    bucket: { name: bucket },
    object: { key, size: 5, etag: "b1946ac92492d2347c6235b4d2611184", sequencer: "00617F08299329D189" },
    "request-id": "N4N7GDK58NMKJ12R",
    requester: "123456789012",
    "source-ip-address": "1.2.3.4",
    reason: "PutObject",
  };
  return eventBridgeEvent("Object Created", "aws.s3", [`arn:aws:s3:::${bucket}`], detail, id);
}

/** The `ECS Task State Change` event for a task as the fake describes it (times as ISO strings). */
export function taskStateEvent(task: object, taskArn: string) {
  return eventBridgeEvent(
    "ECS Task State Change",
    "aws.ecs",
    [taskArn],
    JSON.parse(JSON.stringify({ ...task, command: undefined, environment: undefined })),
  );
}

/** The `Scheduled Event` EventBridge delivers to the agent function on each tick of its rule. */
export function scheduledEvent() {
  return eventBridgeEvent(
    "Scheduled Event",
    "aws.events",
    ["arn:aws:events:us-east-1:123456789012:rule/tern-agent"],
    {},
  );
}
