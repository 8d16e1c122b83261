/**
 * The index queries behind `listRuns` and `claimRuns`, as pure functions: which index, which
 * partition, which filter (the I/O is in dynamodb.ts).
 */
import type { QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import type { ListRunsInput } from "@tern/core/plugin";
import { Expr } from "./items.js";
import { CLAIMABLE, INDEXES, keys, PK, sortableTime, statePk } from "./keys.js";

/** Index entries read per listing query, and per claim query (enough to get past runs whose labels do not match). */
export const PAGE_SIZE = 100;

export type IndexQuery = Omit<QueryCommandInput, "TableName" | "ExclusiveStartKey">;

/**
 * The newest-first query that lists runs with these filters: by state when one is given (the
 * agents' sweep), else by flow, by project, or all runs. Filters the index cannot key on are
 * applied to the attributes it carries (project and flow never change, so carrying them is free).
 */
export function listRunsQuery(input: ListRunsInput, limit: number): IndexQuery {
  const { project, flow, state } = input;
  const e = new Expr();
  const filters: string[] = [];
  const filter = (attribute: string, value: string | undefined) => {
    if (value !== undefined) filters.push(`${e.name(attribute)} = ${e.value(value)}`);
  };
  let index: (typeof INDEXES)[keyof typeof INDEXES];
  let partition: string;
  if (state !== undefined) {
    [index, partition] = [INDEXES.byState, statePk(state)];
    filter("project", project);
    filter("flow", flow);
  } else if (project !== undefined && flow !== undefined) {
    [index, partition] = [INDEXES.byFlow, keys.runsOfFlowPk(project, flow)];
  } else if (project !== undefined) {
    [index, partition] = [INDEXES.byProject, keys.runsOfProjectPk(project)];
  } else {
    [index, partition] = [INDEXES.all, keys.allRunsPk];
    filter("flow", flow);
  }
  const keyCondition = `${e.name(index.pk)} = ${e.value(partition)}`;
  return {
    IndexName: index.name,
    KeyConditionExpression: keyCondition,
    ...(filters.length > 0 ? { FilterExpression: filters.join(" AND ") } : {}),
    ...e.params(),
    ScanIndexForward: false,
    // Without a filter every entry is a run to return, so read no more than asked.
    Limit: filters.length > 0 ? PAGE_SIZE : Math.min(limit, PAGE_SIZE),
  };
}

/** Scheduled runs due at `nowMs` without a live lease, oldest scheduled first. */
export function claimQuery(nowMs: number): IndexQuery {
  const e = new Expr();
  return {
    IndexName: INDEXES.claim.name,
    // sortableTime rounds up, so "key < now + 1" is "scheduled at or before now".
    KeyConditionExpression: `${e.name(INDEXES.claim.pk)} = ${e.value(CLAIMABLE)} AND ${e.name(INDEXES.claim.sk)} < ${e.value(sortableTime(Math.floor(nowMs) + 1))}`,
    FilterExpression: `attribute_not_exists(${e.name("leaseOwner")}) OR ${e.name("leaseExpiresAtMs")} <= ${e.value(nowMs)}`,
    ...e.params(),
    Limit: PAGE_SIZE,
  };
}

/**
 * Most runs, newest first, `findRunIds` looks through: the table has no index by id prefix, so
 * an older run is found by its full id.
 */
export const RUN_ID_PREFIX_SEARCH_LIMIT = 10_000;

/** Index entries read per page when looking for run ids by prefix. */
export const ID_PREFIX_PAGE_SIZE = 1_000;

/** Pages read at most by a prefix search: the newest {@link RUN_ID_PREFIX_SEARCH_LIMIT} runs. */
export const ID_PREFIX_MAX_PAGES = Math.ceil(RUN_ID_PREFIX_SEARCH_LIMIT / ID_PREFIX_PAGE_SIZE);

/**
 * The newest-first query over all runs that keeps those whose id begins with `prefix`, reading
 * only their keys. The table has no index by id prefix, so this filters the all-runs index: read
 * at most {@link ID_PREFIX_MAX_PAGES} pages of it (a bounded read, not a scan of the table).
 */
export function runIdPrefixQuery(prefix: string): IndexQuery {
  const e = new Expr();
  return {
    IndexName: INDEXES.all.name,
    KeyConditionExpression: `${e.name(INDEXES.all.pk)} = ${e.value(keys.allRunsPk)}`,
    FilterExpression: `begins_with(${e.name(PK)}, ${e.value(keys.runPk(prefix))})`,
    ProjectionExpression: e.name(PK),
    ...e.params(),
    ScanIndexForward: false,
    Limit: ID_PREFIX_PAGE_SIZE,
  };
}
