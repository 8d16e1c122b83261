/** The options of a DynamoDB backend, and their checks. */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { TernError } from "@tern/core";

/** Options of {@link DynamoDbBackend.open}. Give `client`, or `region`/`endpoint`, never both. */
export interface DynamoDbBackendOptions {
  /** The table, created by tern's CDK stack or by `createTernTable`. */
  readonly table: string;
  /** @default the SDK's region chain (AWS_REGION, the shared config file) */
  readonly region?: string;
  /** Another endpoint, e.g. `http://127.0.0.1:8000` for DynamoDB Local. @default DynamoDB's regional endpoint */
  readonly endpoint?: string;
  /** A client to use instead of one built from `region` and `endpoint`; `close()` leaves it open. */
  readonly client?: DynamoDBClient;
  /**
   * How long an idempotency key keeps naming its run; DynamoDB's TTL deletes it afterwards
   * (within a few days of expiry), and the same key then starts a new run. Capped at
   * `runRetentionDays` when that is set, so a key never names a deleted run.
   * @default 2592000 (30 days)
   */
  readonly idempotencyTtlSeconds?: number;
  /**
   * How long an ended run (its item, with its state history) is kept; DynamoDB's TTL deletes it
   * afterwards. Task runs and log records are not given a TTL.
   * @default kept until deleted
   */
  readonly runRetentionDays?: number;
}

const TABLE_NAME = /^[a-zA-Z0-9_.-]{3,255}$/;

/** The checked options' lifetimes: how long an idempotency key and an ended run are kept. */
export interface BackendLifetimes {
  readonly keyTtlSeconds: number;
  /** `undefined`: runs are kept until deleted. */
  readonly runRetentionSeconds: number | undefined;
}

/** Checks what `DynamoDbBackend.open` was given, before any request is made. */
export function checkBackendOptions(options: DynamoDbBackendOptions): BackendLifetimes {
  const { table, client: given, endpoint } = options;
  if (typeof table !== "string" || !TABLE_NAME.test(table)) {
    throw new TernError(
      "BACKEND_OPTIONS",
      `DynamoDB backend: table ${JSON.stringify(table)} is not a valid DynamoDB table name (3-255 letters, digits, "_", "-" and ".").`,
    );
  }
  if (given !== undefined && (options.region !== undefined || endpoint !== undefined)) {
    throw new TernError(
      "BACKEND_OPTIONS",
      "DynamoDB backend: give either client, or region/endpoint for the client tern builds, not both.",
    );
  }
  const ttl = options.idempotencyTtlSeconds ?? 30 * 24 * 3600;
  const retention = options.runRetentionDays;
  if (retention !== undefined && !(Number.isInteger(retention) && retention >= 1)) {
    throw new TernError(
      "BACKEND_OPTIONS",
      `DynamoDB backend: runRetentionDays ${retention} must be a whole number of days >= 1 (leave it out to keep runs).`,
    );
  }
  if (!Number.isInteger(ttl) || ttl < 1) {
    throw new TernError(
      "BACKEND_OPTIONS",
      `DynamoDB backend: idempotencyTtlSeconds ${ttl} must be a positive whole number of seconds.`,
    );
  }
  // A key must not outlive the run it names: with a retention, keys expire with their runs at
  // the latest, and a redelivered event after that starts a new run.
  return {
    keyTtlSeconds: retention === undefined ? ttl : Math.min(ttl, retention * 86_400),
    runRetentionSeconds: retention === undefined ? undefined : retention * 86_400,
  };
}
