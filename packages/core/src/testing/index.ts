/**
 * `@tern/core/testing`: helpers for testing tern implementations. Needs `vitest`.
 *
 * @example
 * import { backendContract, blobStoreContract } from "@tern/core/testing";
 *
 * backendContract("MyBackend", () => MyBackend.open({ ... }));
 * blobStoreContract("MyBlobStore", () => new MyBlobStore({ ... }));
 */
export { type BackendContractOptions, backendContract } from "./backend-contract.js";
export { type BlobStoreContractOptions, blobStoreContract } from "./blob-store-contract.js";
