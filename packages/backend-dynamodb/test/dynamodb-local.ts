/** Moved to `@tern/test-support/dynamodb-local`; kept for infra/test until its imports move. */
export * from "@tern/test-support/dynamodb-local";
