/**
 * `@tern/backend-dynamodb`: tern's state in one on-demand DynamoDB table. Importing it makes
 * `dynamodb://<table>?region=<r>&endpoint=<url>` URLs work in `openBackend` (and so in
 * `TERN_BACKEND`).
 *
 * @example
 * import { openBackend } from "@tern/core/runtime";
 * import "@tern/backend-dynamodb";
 *
 * const backend = await openBackend("dynamodb://tern?region=eu-west-1");
 */
import { registerBackendScheme } from "@tern/core/plugin";
import { DynamoDbBackend } from "./dynamodb.js";
import { parseDynamoDbUrl } from "./url.js";

registerBackendScheme("dynamodb", (url) => DynamoDbBackend.open(parseDynamoDbUrl(url)));

export type { ChunkedRef, DynamoDbUsage } from "./db.js";
export { DynamoDbBackend } from "./dynamodb.js";
export { INDEXES, TTL_ATTRIBUTE } from "./keys.js";
export type { DynamoDbBackendOptions } from "./options.js";
export { createTableCliCommand, createTernTable, ternTableDefinition } from "./table.js";
export { parseDynamoDbUrl } from "./url.js";
