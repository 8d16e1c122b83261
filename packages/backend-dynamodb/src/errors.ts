/**
 * The one place where DynamoDB SDK errors become tern errors. Conditional-write failures are not
 * failures of the backend but answers ("someone else wrote first"), so they come back as a
 * {@link ConditionFailed} for the caller to decide; everything else becomes a `BackendError`
 * whose message says what failed and what to do.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { isTernError } from "@tern/core";
import { BackendError } from "@tern/core/plugin";
import { createTableCliCommand } from "./table.js";

/** A conditional write or a transaction did not happen because a condition did not hold. */
export class ConditionFailed extends Error {
  /** The item as it was (`ReturnValuesOnConditionCheckFailure: ALL_OLD`), for a single write. */
  readonly item: Record<string, unknown> | undefined;
  /** Per action of a transaction: its cancellation code and the item when its condition failed. */
  readonly reasons: ReadonlyArray<{ code: string; item: Record<string, unknown> | undefined }>;

  constructor(error: Error & { Item?: Record<string, AttributeValue>; CancellationReasons?: unknown[] }) {
    super(error.message, { cause: error });
    this.item = error.Item === undefined ? undefined : unmarshall(error.Item);
    this.reasons = (error.CancellationReasons ?? []).map((reason) => {
      const { Code, Item } = reason as { Code?: string; Item?: Record<string, AttributeValue> };
      return { code: Code ?? "None", item: Item === undefined ? undefined : unmarshall(Item) };
    });
  }

  /** Whether the transaction was cancelled only because another transaction held an item. */
  get conflictOnly(): boolean {
    return this.reasons.some((r) => r.code === "TransactionConflict") && !this.conditionFailedAt.length;
  }

  /** Indexes of the transaction's actions whose condition failed. */
  get conditionFailedAt(): number[] {
    return this.reasons.flatMap((r, i) => (r.code === "ConditionalCheckFailed" ? [i] : []));
  }
}

/** Where a request went, for messages. */
export interface RequestTarget {
  readonly url: string;
  readonly table: string;
  readonly region: string;
}

const THROTTLING = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "Throttling",
]);

/**
 * Maps an error thrown by `client.send` while doing `what` (e.g. "claim runs"): conditions to
 * {@link ConditionFailed}, tern errors unchanged, the rest to a `BackendError` with the fix.
 */
export function mapSdkError(error: unknown, what: string, target: RequestTarget): Error {
  if (isTernError(error) || error instanceof ConditionFailed) return error;
  const e = error as Error & { $metadata?: { attempts?: number; httpStatusCode?: number }; code?: string };
  const name = e?.name ?? "Error";
  if (name === "ConditionalCheckFailedException" || name === "TransactionCanceledException") {
    return new ConditionFailed(e);
  }
  const prefix = `DynamoDB backend ${target.url}: cannot ${what}`;
  const detail = `${name}: ${e?.message ?? String(error)}`;
  if (name === "ResourceNotFoundException") {
    return new BackendError(
      `${prefix}: table "${target.table}" does not exist in region ${target.region} (${detail}). ` +
        `Deploy tern's CDK stack, call createTernTable(client, "${target.table}") from @tern/backend-dynamodb, or run: ` +
        createTableCliCommand(target.table, target.region),
      { cause: error },
    );
  }
  if (THROTTLING.has(name)) {
    const attempts = e.$metadata?.attempts;
    return new BackendError(
      `${prefix}: DynamoDB throttled the request${attempts === undefined ? "" : ` ${attempts} times`} (the SDK retried with backoff) (${detail}). ` +
        `On-demand tables throttle when traffic more than doubles its recent peak; retry in a moment, ` +
        `pass a client with a higher maxAttempts, or set warm throughput on table "${target.table}".`,
      { cause: error, retryable: true },
    );
  }
  if (
    name === "CredentialsProviderError" ||
    name === "UnrecognizedClientException" ||
    name === "InvalidSignatureException"
  ) {
    return new BackendError(
      `${prefix}: no valid AWS credentials (${detail}). Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY ` +
        "(for DynamoDB Local any values work), or run where an IAM role is available.",
      { cause: error },
    );
  }
  if (name === "AccessDeniedException") {
    return new BackendError(
      `${prefix}: access denied on table "${target.table}" (${detail}). Grant the caller's IAM role dynamodb:* on the ` +
        "table and its indexes (the CDK stack's grants do), or use other credentials.",
      { cause: error },
    );
  }
  if (name === "ValidationException" && /size/i.test(e.message)) {
    return new BackendError(
      `${prefix}: an item would exceed DynamoDB's 400 KB limit (${detail}). This is a bug in tern's DynamoDB ` +
        "backend, which splits large values: please report it with the run's flow.",
      { cause: error },
    );
  }
  const code = e?.code ?? (e?.cause as { code?: unknown } | undefined)?.code;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "ETIMEDOUT" || code === "ECONNRESET") {
    return new BackendError(
      `${prefix}: cannot reach DynamoDB (${detail}). Check the endpoint in ${target.url} and the network; ` +
        "for DynamoDB Local, check that it is running.",
      { cause: error, retryable: true },
    );
  }
  // DynamoDB's own failures (InternalServerError, 5xx) and a request sent with no answer (the SDK
  // stamps $metadata on what it sent) pass; another 4xx, or a request that could not be built, does not.
  const sent = e?.$metadata !== undefined;
  const status = e?.$metadata?.httpStatusCode;
  return new BackendError(`${prefix} (${detail}).`, {
    cause: error,
    retryable: name === "InternalServerError" || (sent && (status === undefined || status >= 500)),
  });
}
