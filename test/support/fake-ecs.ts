/** Moved to `@tern/test-support/fake-ecs`; kept for infra/test until its imports move. */
export * from "@tern/test-support/fake-ecs";
