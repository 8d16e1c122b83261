/**
 * Items to records and back, and a small builder for DynamoDB expressions (every attribute goes
 * through a placeholder, so reserved words such as `state` never matter).
 */
import type {
  AgentRecord,
  FlowSummary,
  FlowVersionRecord,
  JsonValue,
  RunRecord,
  RunState,
  RunStateChange,
  SerializedValue,
} from "@tern/core/plugin";
import type { ChunkedRef, Item } from "./db.js";

/** Builds the placeholders of one request's expressions. */
export class Expr {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  readonly #set: string[] = [];
  readonly #remove: string[] = [];
  readonly #add: string[] = [];
  readonly #nameOf = new Map<string, string>();

  /** The placeholder of attribute `attribute`. */
  name(attribute: string): string {
    let placeholder = this.#nameOf.get(attribute);
    if (placeholder === undefined) {
      placeholder = `#n${this.#nameOf.size}`;
      this.#nameOf.set(attribute, placeholder);
      this.names[placeholder] = attribute;
    }
    return placeholder;
  }

  /** The placeholder of a value. */
  value(value: unknown): string {
    const placeholder = `:v${Object.keys(this.values).length}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  /** `SET attribute = value`, or `= expression` when given one (built with `name`/`value`). */
  set(attribute: string, value: unknown, expression?: string): this {
    this.#set.push(`${this.name(attribute)} = ${expression ?? this.value(value)}`);
    return this;
  }

  remove(attribute: string): this {
    this.#remove.push(this.name(attribute));
    return this;
  }

  add(attribute: string, value: number): this {
    this.#add.push(`${this.name(attribute)} ${this.value(value)}`);
    return this;
  }

  /** The update expression of the `set`, `remove` and `add` calls so far. */
  get update(): string {
    return [
      this.#set.length > 0 ? `SET ${this.#set.join(", ")}` : "",
      this.#remove.length > 0 ? `REMOVE ${this.#remove.join(", ")}` : "",
      this.#add.length > 0 ? `ADD ${this.#add.join(", ")}` : "",
    ]
      .filter((part) => part !== "")
      .join(" ");
  }

  /** The request fields for these placeholders (DynamoDB rejects empty maps). */
  params(): { ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> } {
    return {
      ...(Object.keys(this.names).length > 0 ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length > 0 ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}

/** A run item's large JSON values, already read back from their chunks when they had any. */
export interface ResolvedValues {
  readonly parameters: string;
  readonly outputs: string | undefined;
}

/** The attributes of a run item that hold its record (keys and index keys aside). */
export interface RunItem {
  id: string;
  project: string;
  flow: string;
  version: number;
  state: RunState;
  reason?: string;
  revision: number;
  labels: string[];
  /** JSON, or `parametersRef` when large. */
  parameters?: string;
  parametersRef?: ChunkedRef;
  idempotencyKey?: string;
  scheduledAtMs: number;
  createdAtMs: number;
  updatedAtMs: number;
  attempts: number;
  leaseOwner?: string;
  leaseExpiresAtMs?: number;
  /** The claimRuns call that took the current claim (see claimUpdate). */
  leaseClaim?: string;
  /** JSON */
  deployment?: string;
  /** JSON, or `outputsRef` when large. */
  outputs?: string;
  outputsRef?: ChunkedRef;
  history: Array<{ state: RunState; atMs: number; reason?: string }>;
  environmentType?: string;
}

/** Optional fields a run record keeps as its item has them. */
const OPTIONAL_AS_IS = ["environmentType", "reason", "idempotencyKey"] as const;

/** A run item as a record, without the optional fields it does not have. */
export function runFromItem(item: Item, values: ResolvedValues): RunRecord {
  const i = item as unknown as RunItem;
  const run: { -readonly [K in keyof RunRecord]: RunRecord[K] } = {
    id: i.id,
    project: i.project,
    flow: i.flow,
    version: i.version,
    state: i.state,
    revision: i.revision,
    labels: i.labels,
    parameters: JSON.parse(values.parameters) as Record<string, JsonValue>,
    scheduledAtMs: i.scheduledAtMs,
    createdAtMs: i.createdAtMs,
    updatedAtMs: i.updatedAtMs,
    attempts: i.attempts,
  };
  for (const key of OPTIONAL_AS_IS) if (i[key] !== undefined) run[key] = i[key];
  if (i.leaseOwner !== undefined) run.lease = { owner: i.leaseOwner, expiresAtMs: i.leaseExpiresAtMs as number };
  if (i.deployment !== undefined) run.deployment = JSON.parse(i.deployment) as Record<string, JsonValue>;
  if (values.outputs !== undefined) run.outputs = JSON.parse(values.outputs) as Record<string, SerializedValue>;
  return run;
}

/** A run's history entry as a record. */
export function historyEntry(state: RunState, atMs: number, reason: string | undefined): RunStateChange {
  return reason === undefined ? { state, atMs } : { state, atMs, reason };
}

/** Attribute-name prefix of a flow version's annotations (one attribute per key, JSON values). */
export const ANNOTATION_PREFIX = "annotation:";

export function versionFromItem(item: Item): FlowVersionRecord {
  const annotations: Record<string, JsonValue> = {};
  let annotated = false;
  for (const [name, value] of Object.entries(item)) {
    if (!name.startsWith(ANNOTATION_PREFIX) || typeof value !== "string") continue;
    annotations[name.slice(ANNOTATION_PREFIX.length)] = JSON.parse(value) as JsonValue;
    annotated = true;
  }
  return {
    project: item.project as string,
    flow: item.flow as string,
    version: item.version as number,
    labels: item.labels as string[],
    storage: JSON.parse(item.storage as string) as FlowVersionRecord["storage"],
    location: item.location as string,
    manifestHash: item.manifestHash as string,
    environmentType: item.environmentType as string,
    createdAtMs: item.createdAtMs as number,
    ...(annotated ? { annotations } : {}),
    ...sourceFromItem(item),
  };
}

export function summaryFromItem(item: Item): FlowSummary {
  return {
    project: item.project as string,
    flow: item.flow as string,
    latestVersion: item.latestVersion as number,
    labels: item.labels as string[],
    environmentType: item.environmentType as string,
    updatedAtMs: item.updatedAtMs as number,
    ...sourceFromItem(item),
  };
}

/** A version's or summary's `source` attribute (JSON), as the record's optional field. */
function sourceFromItem(item: Item): Pick<FlowVersionRecord, "source"> {
  return typeof item.source === "string" ? { source: JSON.parse(item.source) as FlowVersionRecord["source"] } : {};
}

export function agentFromItem(item: Item): AgentRecord {
  const agent = { id: item.id as string, labels: item.labels as string[], lastSeenAtMs: item.lastSeenAtMs as number };
  return item.stoppedAtMs === undefined ? agent : { ...agent, stoppedAtMs: item.stoppedAtMs as number };
}
