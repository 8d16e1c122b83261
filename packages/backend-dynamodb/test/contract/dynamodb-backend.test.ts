import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createTernTable, DynamoDbBackend } from "@tern/backend-dynamodb";
import type { Backend } from "@tern/core/plugin";
import { backendContract } from "@tern/core/testing";
import type { DynamoDbLocal } from "@tern/test-support/dynamodb-local";
import { useDynamoDbLocal } from "@tern/test-support/use-dynamodb-local";

let _local: DynamoDbLocal | undefined;
let client: DynamoDBClient | undefined;

useDynamoDbLocal((started, startedClient) => {
  _local = started;
  client = startedClient;
});

// A table per test, as the SQLite suite has a file per test: projects keep flows and runs
// apart, but claims and agents are table-wide, so runs one test left Scheduled would be
// claimed in the next.
let tables = 0;

/** Creates the next test's table; resolves the function that opens a backend on it. */
async function newTable(): Promise<() => Promise<DynamoDbBackend>> {
  if (client === undefined) throw new Error("DynamoDB Local did not start (see beforeAll)");
  const started = client;
  tables += 1;
  const table = `tern-contract-${tables}`;
  await createTernTable(started, table);
  return () => DynamoDbBackend.open({ table, client: started });
}

backendContract("DynamoDbBackend on DynamoDB Local", async () => (await newTable())(), { timeoutMs: 30_000 });

const METHODS = new Set<string>([
  "registerFlowVersion",
  "getFlowVersion",
  "annotateFlowVersion",
  "listFlows",
  "createRun",
  "getRun",
  "findRunIds",
  "listRuns",
  "getRunHistory",
  "claimRuns",
  "transitionRun",
  "saveTaskRuns",
  "getTaskRuns",
  "appendLogs",
  "getLogs",
  "getLogPage",
  "listDueSchedules",
  "listSchedules",
  "advanceSchedule",
  "setSchedulesPaused",
  "recordAgent",
  "listAgents",
]);

/**
 * A backend whose every call goes through a newly opened DynamoDbBackend, as if each came from
 * another process: nothing a backend remembers between calls (the run states it saw, which let
 * a transition go out in one request) can hide a bug of the path that does not know them.
 */
function everyCallFresh(open: () => Promise<DynamoDbBackend>, url: string): Backend {
  return new Proxy({} as Backend, {
    get(_, property) {
      if (property === "url") return url;
      if (property === "close") return async () => {};
      if (typeof property !== "string" || !METHODS.has(property)) return undefined;
      return async (...args: unknown[]) => {
        const backend = await open();
        try {
          return await (backend[property as keyof Backend] as (...a: unknown[]) => Promise<unknown>)(...args);
        } finally {
          await backend.close();
        }
      };
    },
  });
}

backendContract(
  "DynamoDbBackend on DynamoDB Local, every call from a new backend",
  async () => {
    const open = await newTable();
    const first = await open();
    await first.close();
    return everyCallFresh(open, first.url);
  },
  { timeoutMs: 30_000 },
);
