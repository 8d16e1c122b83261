import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createTernTable, DynamoDbBackend } from "@tern/backend-dynamodb";
import { executeRun } from "@tern/core/runtime";
import {
  type DynamoDbLocal,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  startDynamoDbLocal,
} from "@tern/test-support/dynamodb-local";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../lib/config.js";
import { TernStack } from "../lib/stack.js";
import { runnerFlow } from "./fixtures/runner-flow.js";

type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: Record<string, unknown> };
/** One DynamoDB request: its IAM action, the partition keys it touches, and the index it reads, if any. */
type Request = { action: string; keys: string[]; index?: string };

const TABLE = "tern-runner-permissions";

/** The statements of a role's inline policies (CDK's DefaultPolicy), by the role's logical id prefix. */
function roleStatements(template: Template, rolePrefix: string): Statement[] {
  const out: Statement[] = [];
  for (const policy of Object.values(template.findResources("AWS::IAM::Policy"))) {
    const roles = JSON.stringify(policy.Properties.Roles);
    if (!new RegExp(`"Ref":"${rolePrefix}[0-9A-F]{8}"`).test(roles)) continue;
    out.push(...(policy.Properties.PolicyDocument.Statement as Statement[]));
  }
  return out;
}

const list = (v: unknown): string[] => (Array.isArray(v) ? v : [v]) as string[];
const glob = (pattern: string) =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")}$`);

/** Whether IAM would allow the request under these statements (the table's own ARN is their resource). */
function allowed(statements: Statement[], request: Request): boolean {
  if (request.index !== undefined) return false; // no statement names an index
  return statements.some((s) => {
    if (s.Effect !== "Allow" || !list(s.Action).includes(request.action)) return false;
    if (s.Condition === undefined) return true;
    const conditions = Object.entries(s.Condition);
    return conditions.every(([operator, keys]) => {
      const patterns = (keys as Record<string, unknown>)["dynamodb:LeadingKeys"];
      if (operator !== "ForAllValues:StringLike" || patterns === undefined)
        throw new Error(`unexpected condition ${operator}`);
      return request.keys.every((key) => list(patterns).some((p) => glob(p).test(key)));
    });
  });
}

const ACTIONS: Record<string, string> = {
  Get: "GetItem",
  Put: "PutItem",
  Update: "UpdateItem",
  Delete: "DeleteItem",
  BatchWrite: "BatchWriteItem",
  BatchGet: "BatchGetItem",
  TransactWrite: "TransactWriteItems",
  TransactGet: "TransactGetItems",
};

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === "object" && v !== null ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const value = (v: unknown): string => (typeof v === "string" ? v : ((obj(v).S as string | undefined) ?? "?"));
const pk = (item: unknown): string => value(obj(item).PK);

/** The request a command makes, from its input (marshalled or not). */
function request(commandName: string, input: Json): Request {
  const op = commandName.replace(/Command$/, "");
  const action = `dynamodb:${ACTIONS[op] ?? op}`;
  switch (op) {
    case "DescribeTable":
      return { action, keys: [] };
    case "Get":
    case "GetItem":
    case "Update":
    case "UpdateItem":
    case "Delete":
    case "DeleteItem":
      return { action, keys: [pk(input.Key)] };
    case "Put":
    case "PutItem":
      return { action, keys: [pk(input.Item)] };
    case "Query": {
      const name = Object.entries(obj(input.ExpressionAttributeNames)).find(([, n]) => n === "PK")?.[0];
      const placeholder =
        name === undefined
          ? undefined
          : new RegExp(`${name}\\s*=\\s*(:\\w+)`).exec(String(input.KeyConditionExpression))?.[1];
      return {
        action,
        keys: [placeholder === undefined ? "?" : value(obj(input.ExpressionAttributeValues)[placeholder])],
        ...(input.IndexName === undefined ? {} : { index: String(input.IndexName) }),
      };
    }
    case "BatchWrite":
    case "BatchWriteItem":
      return {
        action,
        keys: Object.values(obj(input.RequestItems)).flatMap((items) =>
          arr(items).map((r) => pk(obj(r).PutRequest ? obj(obj(r).PutRequest).Item : obj(obj(r).DeleteRequest).Key)),
        ),
      };
    case "BatchGet":
    case "BatchGetItem":
      return {
        action,
        keys: Object.values(obj(input.RequestItems)).flatMap((r) => arr(obj(r).Keys).map(pk)),
      };
    default:
      return { action, keys: ["(not understood)"] };
  }
}

useTempTernHome("tern-runner-permissions-", "file");

let db: DynamoDbLocal;
let setup: DynamoDbBackend;
let setupClient: DynamoDBClient;
let template: Template;

beforeAll(async () => {
  db = await startDynamoDbLocal();
  const client = new DynamoDBClient({ region: LOCAL_REGION, endpoint: db.endpoint, credentials: LOCAL_CREDENTIALS });
  await createTernTable(client, TABLE);
  setupClient = client;
  setup = await DynamoDbBackend.open({ table: TABLE, client: setupClient });
  for (const project of ["default", "billing"]) await runnerFlow.register(project, { backend: setup });
  const app = new App();
  const stack = new TernStack(app, "Tern", {
    config: parseConfig(
      { runnerImage: { uri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/r:1" }, projectTaskRoles: { billing: {} } },
      "test",
    ),
  });
  template = Template.fromStack(stack);
}, 120_000);

afterAll(async () => {
  await setup?.close();
  setupClient?.destroy();
  await db?.stop();
});

/** Runs `executeRun` for a new run of `project` through a backend whose every request is recorded. */
async function recordedRun(project: string): Promise<{ state: string; requests: Request[] }> {
  const { run } = await setup.createRun({
    project,
    flow: "runner-permissions",
    parameters: { size: 200_000, pad: "p".repeat(100_000) },
  });
  const requests: Request[] = [];
  const client = new DynamoDBClient({ region: LOCAL_REGION, endpoint: db.endpoint, credentials: LOCAL_CREDENTIALS });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      requests.push(request(String(context.commandName), args.input as Json));
      return next(args);
    },
    { step: "serialize", name: "recordRequests" },
  );
  const backend = await DynamoDbBackend.open({ table: TABLE, client });
  try {
    const result = await executeRun(run.id, { backend, flushIntervalMs: 50 });
    return { state: result.state, requests };
  } finally {
    await backend.close();
    client.destroy();
  }
}

describe("the task role allows what tern execute does, and no more", { timeout: 60_000 }, () => {
  it("runs a flow (logs, task runs, chunked parameters and outputs) with only requests the shared task role allows", async () => {
    const statements = roleStatements(template, "RunnerTaskRole");
    expect(statements.length).toBeGreaterThan(0);
    const { state, requests } = await recordedRun("default");
    expect(state).toBe("Success");
    // What the runner did: open the table, read its run and flow version, read chunks, write its run, task runs, logs and chunks.
    const actions = new Set(requests.map((r) => r.action));
    for (const action of ["DescribeTable", "GetItem", "Query", "UpdateItem", "BatchWriteItem"])
      expect(actions, action).toContain(`dynamodb:${action}`);
    expect(requests.flatMap((r) => r.keys)).toEqual(expect.arrayContaining([expect.stringMatching(/^FLOW#default#/)]));
    const refused = requests.filter((r) => !allowed(statements, r));
    expect(refused).toEqual([]);
  });

  it("runs a project's flow with its own role, which cannot read another project's flow versions", async () => {
    const statements = roleStatements(template, "RunnerTaskRolebilling");
    expect(statements.length).toBeGreaterThan(0);
    const { state, requests } = await recordedRun("billing");
    expect(state).toBe("Success");
    expect(requests.filter((r) => !allowed(statements, r))).toEqual([]);
    // The check is not vacuous: what the runner must not do is refused.
    expect(allowed(statements, { action: "dynamodb:GetItem", keys: ["FLOW#default#runner-permissions"] })).toBe(false);
    expect(allowed(statements, { action: "dynamodb:Scan", keys: [] })).toBe(false);
    expect(allowed(statements, { action: "dynamodb:DeleteItem", keys: ["RUN#x"] })).toBe(false);
    expect(allowed(statements, { action: "dynamodb:GetItem", keys: ["AGENTS"] })).toBe(false);
    expect(allowed(statements, { action: "dynamodb:Query", keys: ["STATE#Running"], index: "GSI2" })).toBe(false);
    expect(allowed(roleStatements(template, "RunnerTaskRole"), { action: "dynamodb:PutItem", keys: ["IDEM#x"] })).toBe(
      false,
    );
  });
});
