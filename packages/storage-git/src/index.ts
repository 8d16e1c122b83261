/**
 * `@tern/storage-git`: `GitStorage` (any Git server over HTTP(S), or a bare repository on disk)
 * and the hosting services' `GitHubStorage`, `GitLabStorage` and `BitbucketStorage`. Importing it
 * registers the `GitStorage` type, so that stored flows rebuild their storage from its JSON.
 *
 * @example
 * import { GitHubStorage } from "@tern/storage-git";
 * new Flow("etl", { storage: new GitHubStorage({ repo: "acme/flows" }) }, build);
 */
import { registerStorageType } from "@tern/core/plugin";
import { GitStorage } from "./git-storage.js";
import type { GitStorageOptions } from "./options.js";

export { GitBlobStore } from "./git-blob-store.js";
export { GitStorage } from "./git-storage.js";
export { BitbucketStorage, GitHubStorage, GitLabStorage, type HostedGitOptions } from "./hosts.js";
export type { GitAuthOptions, GitStorageOptions } from "./options.js";

registerStorageType(GitStorage.type, (options) => new GitStorage(options as unknown as GitStorageOptions));
