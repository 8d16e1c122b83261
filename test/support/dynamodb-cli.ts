/** The CLI on a state table in DynamoDB Local, as a user points it at DynamoDB through TERN_BACKEND. */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createTernTable } from "@tern/backend-dynamodb";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "@tern/test-support/dynamodb-local";

/** Creates `table` on the DynamoDB Local at `endpoint`; resolves the CLI's environment for a backend on it. */
export async function dynamoDbCliEnv(endpoint: string, table: string): Promise<Record<string, string>> {
  const client = new DynamoDBClient({ region: LOCAL_REGION, endpoint, credentials: LOCAL_CREDENTIALS });
  try {
    await createTernTable(client, table);
  } finally {
    client.destroy();
  }
  return {
    TERN_BACKEND: `dynamodb://${table}?region=${LOCAL_REGION}&endpoint=${encodeURIComponent(endpoint)}`,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  };
}
