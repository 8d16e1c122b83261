/** Moved to `@tern/test-support/serverless`; kept for infra/test until its imports move. */
export * from "@tern/test-support/serverless";
