/**
 * The table tern needs: its definition as data (for `createTernTable`, the CDK stack and the
 * "table missing" message), the call that creates it, and the check `open` makes.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
  type TableDescription,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { BackendError } from "@tern/core/plugin";
import { INDEXES, PK, SK, TTL_ATTRIBUTE } from "./keys.js";

/** Non-key attributes each index carries besides the table's keys (what its queries read). */
const PROJECTIONS: Record<keyof typeof INDEXES, readonly string[]> = {
  // Enough to decide a claim without reading the run: labels, and the lease and attempts for
  // the lost-lease rule. The claim itself is a conditional write on `revision`.
  claim: ["labels", "attempts", "leaseOwner", "leaseExpiresAtMs", "revision"],
  // project and flow never change, so carrying them costs no extra index writes; they let
  // `listRuns({ state, project, flow })` filter in the query.
  byState: ["project", "flow"],
  byProject: [],
  byFlow: [],
  all: ["project", "flow"],
};

/**
 * The `CreateTable` input of a tern table named `table`: string keys `PK`/`SK`, five global
 * secondary indexes (see the README), on-demand billing. TTL is set separately
 * ({@link createTernTable} does both).
 */
export function ternTableDefinition(table: string): CreateTableCommandInput {
  const indexes = Object.entries(INDEXES) as Array<[keyof typeof INDEXES, (typeof INDEXES)[keyof typeof INDEXES]]>;
  return {
    TableName: table,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [PK, SK, ...indexes.flatMap(([, index]) => [index.pk, index.sk])].map((name) => ({
      AttributeName: name,
      AttributeType: "S",
    })),
    KeySchema: [
      { AttributeName: PK, KeyType: "HASH" },
      { AttributeName: SK, KeyType: "RANGE" },
    ],
    GlobalSecondaryIndexes: indexes.map(([kind, index]) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.pk, KeyType: "HASH" },
        { AttributeName: index.sk, KeyType: "RANGE" },
      ],
      Projection:
        PROJECTIONS[kind].length === 0
          ? { ProjectionType: "KEYS_ONLY" }
          : { ProjectionType: "INCLUDE", NonKeyAttributes: [...PROJECTIONS[kind]] },
    })),
  };
}

/**
 * Creates a tern table (on-demand, with its indexes and TTL on `expiresAt`) and waits until it
 * is active. For tests, scripts and DynamoDB Local; a deployment gets its table from the CDK stack.
 *
 * @example
 * await createTernTable(new DynamoDBClient({ endpoint: "http://127.0.0.1:8000" }), "tern");
 */
export async function createTernTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(new CreateTableCommand(ternTableDefinition(table)));
    await waitUntilTableExists({ client, maxWaitTime: 120 }, { TableName: table });
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      }),
    );
  } catch (error) {
    throw new BackendError(
      `DynamoDB backend: cannot create table "${table}" (${(error as Error).name}: ${(error as Error).message}). ` +
        "Check the credentials' dynamodb:CreateTable and dynamodb:UpdateTimeToLive permissions, or that no table of that name exists.",
      { cause: error },
    );
  }
}

/** The AWS CLI command that creates the table, for the "table missing" message. */
export function createTableCliCommand(table: string, region: string): string {
  const definition = ternTableDefinition(table);
  const json = (value: unknown) => `'${JSON.stringify(value)}'`;
  return [
    `aws dynamodb create-table --region ${region} --table-name ${table} --billing-mode PAY_PER_REQUEST`,
    `--attribute-definitions ${json(definition.AttributeDefinitions)}`,
    `--key-schema ${json(definition.KeySchema)}`,
    `--global-secondary-indexes ${json(definition.GlobalSecondaryIndexes)}`,
    `&& aws dynamodb wait table-exists --region ${region} --table-name ${table}`,
    `&& aws dynamodb update-time-to-live --region ${region} --table-name ${table} --time-to-live-specification Enabled=true,AttributeName=${TTL_ATTRIBUTE}`,
  ].join(" ");
}

/**
 * Checks that a table's description has tern's keys and indexes and that it is usable; fails
 * with a {@link BackendError} that names what differs and how to get the right table.
 */
export function checkTernTable(description: TableDescription | undefined, table: string, region: string): void {
  const expected = ternTableDefinition(table);
  const keyOf = (schema: Array<{ AttributeName?: string; KeyType?: string }> | undefined) =>
    JSON.stringify((schema ?? []).map((k) => [k.AttributeName, k.KeyType]));
  const problems: string[] = [];
  if (keyOf(description?.KeySchema) !== keyOf(expected.KeySchema)) {
    problems.push(`its key is ${keyOf(description?.KeySchema)}, tern needs ${keyOf(expected.KeySchema)}`);
  }
  for (const index of expected.GlobalSecondaryIndexes ?? []) {
    const found = description?.GlobalSecondaryIndexes?.find((g) => g.IndexName === index.IndexName);
    if (found === undefined) problems.push(`index ${index.IndexName} is missing`);
    else if (keyOf(found.KeySchema) !== keyOf(index.KeySchema)) {
      problems.push(`index ${index.IndexName} has key ${keyOf(found.KeySchema)}, tern needs ${keyOf(index.KeySchema)}`);
    }
  }
  if (problems.length > 0) {
    throw new BackendError(
      `DynamoDB backend: table "${table}" in ${region} is not a tern table: ${problems.join("; ")}. ` +
        "Point TERN_BACKEND at a table created by tern's CDK stack or by createTernTable() from @tern/backend-dynamodb.",
    );
  }
  if (description?.TableStatus === "CREATING") {
    throw new BackendError(
      `DynamoDB backend: table "${table}" in ${region} is still being created. Try again in a minute.`,
      { retryable: true },
    );
  }
}
