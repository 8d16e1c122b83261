/**
 * Flow versions, the per-flow summaries `listFlows` reads, and agents: the items that live
 * outside any run's partition.
 */
import { PutCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { NotFoundError } from "@tern/core";
import {
  type AgentRecord,
  BackendError,
  type BackoffRetryOptions,
  checkAnnotations,
  type FlowSummary,
  type FlowVersionInput,
  type FlowVersionRecord,
  type JsonValue,
  retryWithBackoff,
} from "@tern/core/plugin";
import type { TableClient } from "./db.js";
import { ConditionFailed } from "./errors.js";
import { ANNOTATION_PREFIX, agentFromItem, Expr, summaryFromItem, versionFromItem } from "./items.js";
import { keys, PK, SK } from "./keys.js";

/** Concurrent registrations of one flow retry this many times before giving up. */
const REGISTER_ATTEMPTS = 25;

/**
 * Records a version unless the newest has the same manifest hash. The new version's item is
 * written only if its number is still free (a transaction with the flow's summary), and a
 * registration that lost the number to another reads the newest again and retries.
 */
export async function registerFlowVersion(
  db: TableClient,
  input: FlowVersionInput,
): Promise<{ version: FlowVersionRecord; status: "new" | "unchanged" }> {
  const { project, flow } = input;
  const retries: BackoffRetryOptions = {
    attempts: REGISTER_ATTEMPTS,
    baseMs: 10,
    capMs: 200,
    retryable: (error) => error instanceof ConditionFailed,
    exhausted: (error, attempts) =>
      new BackendError(
        `DynamoDB backend ${db.target.url}: cannot register flow "${flow}" in project "${project}": ${attempts} ` +
          "concurrent registrations took each version number first. Register again.",
        { cause: error, retryable: true },
      ),
  };
  return retryWithBackoff(retries, async () => {
    const newest = await getFlowVersion(db, project, flow);
    if (newest !== undefined && newest.manifestHash === input.manifestHash) {
      return { version: newest, status: "unchanged" as const };
    }
    const version: FlowVersionRecord = {
      project,
      flow,
      version: (newest?.version ?? 0) + 1,
      labels: [...input.labels],
      storage: input.storage,
      location: input.location,
      manifestHash: input.manifestHash,
      environmentType: input.environmentType,
      createdAtMs: Date.now(),
      ...(input.source === undefined ? {} : { source: input.source }),
    };
    // The source is JSON in one attribute, as the storage is: read back whole, never queried.
    const source = version.source === undefined ? {} : { source: JSON.stringify(version.source) };
    const summary = new Expr();
    const summaryCondition = `attribute_not_exists(${summary.name(PK)}) OR ${summary.name("latestVersion")} < ${summary.value(version.version)}`;
    await db.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: db.table,
              Item: {
                ...keys.flowVersion(project, flow, version.version),
                type: "flowVersion",
                ...version,
                storage: JSON.stringify(version.storage),
                ...source,
              },
              ConditionExpression: "attribute_not_exists(#pk)",
              ExpressionAttributeNames: { "#pk": PK },
            },
          },
          {
            Put: {
              TableName: db.table,
              Item: {
                ...keys.flowSummary(project, flow),
                type: "flowSummary",
                project,
                flow,
                latestVersion: version.version,
                labels: version.labels,
                environmentType: version.environmentType,
                updatedAtMs: version.createdAtMs,
                ...source,
              },
              ConditionExpression: summaryCondition,
              ...summary.params(),
            },
          },
        ],
      }),
      "register a flow version",
    );
    return { version, status: "new" as const };
  });
}

/** A version, or the newest one (the last item of the flow's partition) when `version` is omitted. */
export async function getFlowVersion(
  db: TableClient,
  project: string,
  flow: string,
  version?: number,
): Promise<FlowVersionRecord | undefined> {
  if (version !== undefined) {
    const item = await db.get(keys.flowVersion(project, flow, version), "read a flow version");
    return item === undefined ? undefined : versionFromItem(item);
  }
  for await (const page of db.pages(
    {
      KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :v)",
      ExpressionAttributeNames: { "#pk": PK, "#sk": SK },
      ExpressionAttributeValues: { ":pk": keys.flowVersionsPk(project, flow), ":v": "V#" },
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
    },
    "read the newest flow version",
  )) {
    return page[0] === undefined ? undefined : versionFromItem(page[0]);
  }
  return undefined;
}

/**
 * Sets annotations on a version item: each key is its own attribute (`annotation:<key>`, the
 * value as JSON), so one update sets the keys given and leaves the others, with no read first.
 */
export async function annotateFlowVersion(
  db: TableClient,
  { project, flow, version }: Pick<FlowVersionRecord, "project" | "flow" | "version">,
  annotations: Readonly<Record<string, JsonValue>>,
): Promise<FlowVersionRecord> {
  const patch = checkAnnotations(annotations);
  const expr = new Expr();
  const sets = Object.entries(patch).map(
    ([key, value]) => `${expr.name(`${ANNOTATION_PREFIX}${key}`)} = ${expr.value(JSON.stringify(value))}`,
  );
  try {
    const item = await db.update(
      keys.flowVersion(project, flow, version),
      {
        UpdateExpression: `SET ${sets.join(", ")}`,
        ConditionExpression: `attribute_exists(${expr.name(PK)})`,
        ...expr.params(),
      },
      "annotate a flow version",
    );
    return versionFromItem(item);
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
    throw NotFoundError.flowVersion(project, flow, version, db.target.url);
  }
}

/** Each flow with its newest version, by project and flow name. */
export async function listFlows(db: TableClient, project?: string): Promise<FlowSummary[]> {
  const prefix = project === undefined ? "" : keys.flowSummaryPrefix(project);
  const items = await db.queryPrefix(keys.flowSummariesPk, prefix, "list flows");
  return items.map(summaryFromItem).sort((a, b) => compare(a.project, b.project) || compare(a.flow, b.flow));
}

export async function recordAgent(db: TableClient, agent: AgentRecord): Promise<void> {
  await db.send(
    new PutCommand({
      TableName: db.table,
      Item: {
        ...keys.agent(agent.id),
        type: "agent",
        id: agent.id,
        labels: [...agent.labels],
        lastSeenAtMs: agent.lastSeenAtMs,
        ...(agent.stoppedAtMs === undefined ? {} : { stoppedAtMs: agent.stoppedAtMs }),
      },
    }),
    "record an agent",
  );
}

/** Agents, most recently seen first. */
export async function listAgents(db: TableClient): Promise<AgentRecord[]> {
  const items = await db.queryPrefix(keys.agentsPk, "", "list agents");
  return items.map(agentFromItem).sort((a, b) => b.lastSeenAtMs - a.lastSeenAtMs || compare(a.id, b.id));
}

/** Code-unit order, as SQLite's BINARY collation for the ASCII names tern uses. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
