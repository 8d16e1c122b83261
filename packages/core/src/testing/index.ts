/**
 * `@tern/core/testing`: helpers for testing tern implementations. Needs `vitest`.
 *
 * @example
 * import { backendContract } from "@tern/core/testing";
 *
 * backendContract("MyBackend", () => MyBackend.open({ ... }));
 */
export { type BackendContractOptions, backendContract } from "./backend-contract.js";
