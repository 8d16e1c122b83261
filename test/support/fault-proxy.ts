/** Moved to `@tern/test-support/fault-proxy`; kept for packages/storage-cloud/test until its import moves. */
export * from "@tern/test-support/fault-proxy";
