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
import { Storage, TernError } from "@tern/core";
import { type BlobStore, type JsonValue, ternHome } from "@tern/core/plugin";
import { type Branch, LocalBranch, RemoteBranch } from "./branch.js";
import { GitBlobStore } from "./git-blob-store.js";
import { checkGitStorageOptions, DEFAULT_BRANCH, type GitAuthOptions, type GitStorageOptions } from "./options.js";

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
      auth: auth === undefined ? undefined : `the token in $${auth.tokenEnv}`,
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
      out.auth = {
        tokenEnv: this.auth.tokenEnv,
        ...(this.auth.username === undefined ? {} : { username: this.auth.username }),
      };
    }
    return out;
  }
}

/** The Authorization header for `auth`, from its environment variable, read now. */
function authHeader(auth: GitAuthOptions): Record<string, string> {
  const token = process.env[auth.tokenEnv];
  if (token === undefined || token === "") {
    throw new TernError(
      "STORAGE_CREDENTIALS",
      `GitStorage: auth.tokenEnv names ${auth.tokenEnv}, which is not set in this process's environment. Set it to a token that can read (and, to register, push to) the repository.`,
    );
  }
  const basic = Buffer.from(`${auth.username ?? "x-access-token"}:${token}`).toString("base64");
  return { Authorization: `Basic ${basic}` };
}
