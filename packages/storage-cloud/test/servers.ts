/** Moved to `@tern/test-support/servers`; kept for the tests that still import it from here. */
export * from "@tern/test-support/servers";
