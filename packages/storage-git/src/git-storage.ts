/**
 * `GitStorage`: tern flows on a dedicated branch of a Git repository (GitHub, GitLab, Bitbucket,
 * any server speaking smart HTTP, or a bare repository on a shared disk), in pure JavaScript: no
 * `git` binary where flows are registered or run.
 *
 * @example
 * import { GitStorage } from "@tern/storage-git";
 * new Flow("etl", { storage: new GitStorage({ url: "https://github.com/acme/flows.git", auth: { tokenEnv: "GITHUB_TOKEN" } }) }, build);
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Storage } from "@tern/core";
import { type BlobStore, type JsonValue, ternHome } from "@tern/core/plugin";
import { authHeader, describeAuth, type GitAuthOptions } from "./auth.js";
import { type Branch, LocalBranch, RemoteBranch } from "./branch.js";
import { GitBlobStore } from "./git-blob-store.js";
import { checkGitStorageOptions, DEFAULT_BRANCH, type GitStorageOptions } from "./options.js";

declare module "@tern/core/plugin" {
  interface StorageOptionsByType {
    GitStorage: GitStorageOptions;
  }
}

/** Flows stored as files on one branch of a Git repository, content-addressed under the storage's prefix. */
export class GitStorage extends Storage {
  static override readonly type: string = "GitStorage";
  readonly url: string;
  readonly branch: string;
  readonly auth: GitAuthOptions | undefined;
  readonly #cacheDirectory: string | undefined;

  constructor(options: GitStorageOptions) {
    super(checkGitStorageOptions(options));
    this.url = options.url;
    this.branch = options.branch ?? DEFAULT_BRANCH;
    this.auth = options.auth;
    this.#cacheDirectory = options.cacheDirectory;
  }

  protected override createBlobStore(): BlobStore {
    const auth = this.auth;
    const context = {
      url: this.url,
      branch: this.branch,
      auth: auth === undefined ? undefined : describeAuth(auth),
    };
    let branch: Branch;
    if (this.url.startsWith("file:")) {
      branch = new LocalBranch(fileURLToPath(this.url), this.branch, this.url);
    } else {
      const key = createHash("sha256").update(`${this.url}#${this.branch}`).digest("hex").slice(0, 16);
      const gitdir = this.#cacheDirectory ?? join(ternHome(), "cache", "git", key);
      branch = new RemoteBranch(this.url, this.branch, gitdir, async () =>
        auth === undefined ? {} : authHeader(auth),
      );
    }
    return new GitBlobStore(branch, context);
  }

  protected override jsonOptions(): Record<string, JsonValue> {
    const out: Record<string, JsonValue> = { url: this.url };
    if (this.branch !== DEFAULT_BRANCH) out.branch = this.branch;
    if (this.auth !== undefined) {
      // Where the token is, never the token.
      const { tokenEnv, secretArn, username } = this.auth;
      out.auth = {
        ...(tokenEnv === undefined ? {} : { tokenEnv }),
        ...(secretArn === undefined ? {} : { secretArn }),
        ...(username === undefined ? {} : { username }),
      };
    }
    return out;
  }
}
