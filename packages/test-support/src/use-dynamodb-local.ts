/**
 * DynamoDB Local for the tests of one file: started before them (with a client on it, handed to
 * `started`) and stopped after them.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll } from "vitest";
import { type DynamoDbLocal, LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal } from "./dynamodb-local.js";

export function useDynamoDbLocal(
  started: (local: DynamoDbLocal, client: DynamoDBClient) => void | Promise<void>,
): void {
  let local: DynamoDbLocal | undefined;
  let client: DynamoDBClient | undefined;
  beforeAll(async () => {
    local = await startDynamoDbLocal();
    client = new DynamoDBClient({ endpoint: local.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    await started(local, client);
  }, 60_000);
  afterAll(async () => {
    client?.destroy();
    await local?.stop();
  });
}
