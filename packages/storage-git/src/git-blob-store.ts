/**
 * `GitBlobStore`: objects as files on one branch of a Git repository. A write is a commit on the
 * branch's tip with the one file added or removed, made the new tip by compare-and-swap; a writer
 * that lost the race (another process pushed first) reads the new tip and tries again, so
 * concurrent writers all land and nothing is overwritten. Within a process, operations on one
 * store take turns (they share its local objects).
 */
import { NotFoundError, TernError } from "@tern/core";
import type { BlobHead, BlobStore, PutOptions } from "@tern/core/plugin";
import { BlobConflictError, checkKey, existingObject } from "@tern/core/plugin";
import type { Branch } from "./branch.js";
import { type ErrorContext, gitError } from "./errors.js";
import { isogit } from "./git.js";
import { findBlob, listFiles, lookupPath, withPath } from "./tree.js";

/** Tries of a write that keeps losing the race to other writers, with a growing pause between them. */
const MAX_TRIES = 12;
const AUTHOR = { name: "tern", email: "tern@localhost" };

/** What a tip holds at a key (see `lookupPath`). */
type Existing = Awaited<ReturnType<typeof lookupPath>>;

export class GitBlobStore implements BlobStore {
  readonly url: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly branch: Branch,
    readonly context: ErrorContext,
  ) {
    this.url = `${context.url}#${context.branch}`;
  }

  describe(key: string): string {
    return `${this.url}:${key}`;
  }

  async put(key: string, body: Uint8Array, _options: PutOptions): Promise<"created" | "exists"> {
    checkKey(key);
    return this.#turn(`write ${key}`, async () => {
      const { git } = await isogit();
      const blob = await git.writeBlob({ fs: this.branch.fs, gitdir: this.branch.gitdir, blob: body });
      return this.#write(key, `tern: add ${key}`, "created", (existing) => {
        if (existing === undefined) return { set: blob };
        // A directory there (or a file above) would be dropped by the write.
        if (existing === "taken") return { done: () => Promise.reject(new BlobConflictError(this.describe(key))) };
        // Git names a blob by its content: the same id is the same bytes.
        return { done: async () => existingObject(this.describe(key), existing.blob === blob) };
      });
    });
  }

  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    return this.#turn(`read ${key}`, async () => {
      const blob = await this.#find(key);
      if (blob === undefined) throw NotFoundError.blob(key, this.describe(key));
      return this.#read(blob);
    });
  }

  async head(key: string): Promise<BlobHead | undefined> {
    checkKey(key);
    return this.#turn(`read ${key}`, async () => {
      const blob = await this.#find(key);
      return blob === undefined ? undefined : { sizeBytes: (await this.#read(blob)).byteLength };
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.#turn(`list ${prefix}`, async () => {
      const tip = await this.branch.sync();
      return tip === undefined ? [] : listFiles(this.branch, tip, prefix);
    });
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    return this.#turn(`delete ${key}`, () =>
      this.#write(key, `tern: remove ${key}`, undefined, (existing) =>
        typeof existing === "object" ? { set: undefined } : { done: async () => undefined },
      ),
    );
  }

  /**
   * Changes `key` on the branch: `plan` sees what the tip holds there and answers the blob to set
   * (undefined: remove the key), or what to answer without writing. The first try trusts this
   * machine's copy of the branch, with no request: its commit is pushed only onto the tip it was
   * made on (a moved tip makes it "stale"), and an answer that writes nothing is given only once a
   * current tip says the same. A swap lost on a current tip is a race with another writer, which
   * pauses before the next try.
   */
  async #write<R>(
    key: string,
    message: string,
    written: R,
    plan: (existing: Existing) => { readonly set: string | undefined } | { readonly done: () => Promise<R> },
  ): Promise<R> {
    let view = await this.branch.known();
    for (let lost = 0; ; ) {
      const existing = view.tip === undefined ? undefined : await lookupPath(this.branch, view.tip, key);
      const step = plan(existing);
      if ("set" in step) {
        if ((await this.#commit(view.tip, key, step.set, message)) === "advanced") return written;
        if (view.current) await this.#lost(++lost, key);
      } else if (view.current) {
        return step.done();
      }
      view = { tip: await this.branch.sync(), current: true };
    }
  }

  async #find(key: string): Promise<string | undefined> {
    const tip = await this.branch.sync();
    return tip === undefined ? undefined : findBlob(this.branch, tip, key);
  }

  async #read(blob: string): Promise<Uint8Array> {
    const { git } = await isogit();
    return (await git.readBlob({ fs: this.branch.fs, gitdir: this.branch.gitdir, cache: this.branch.cache, oid: blob }))
      .blob;
  }

  /** A commit on `tip` with `key` set to `blob` (or removed), made the branch's tip if it still is `tip`. */
  async #commit(tip: string | undefined, key: string, blob: string | undefined, message: string) {
    const { git } = await isogit();
    const tree =
      (await withPath(this.branch, tip, key, blob)) ??
      (await git.writeTree({ fs: this.branch.fs, gitdir: this.branch.gitdir, tree: [] }));
    const who = { ...AUTHOR, timestamp: Math.floor(Date.now() / 1000), timezoneOffset: 0 };
    const commit = await git.writeCommit({
      fs: this.branch.fs,
      gitdir: this.branch.gitdir,
      commit: { tree, parent: tip === undefined ? [] : [tip], author: who, committer: who, message: `${message}\n` },
    });
    return this.branch.advance(commit, tip);
  }

  /** After a lost race: a pause that grows with the tries, or the error once they are spent. */
  async #lost(attempt: number, key: string): Promise<void> {
    if (attempt >= MAX_TRIES) {
      throw new TernError(
        "STORAGE_UNAVAILABLE",
        `${this.describe(key)}: other writers moved the branch ${attempt} times while this write tried to land; try again.`,
        { retryable: true },
      );
    }
    const capMs = Math.min(2_000, 25 * 2 ** attempt);
    await new Promise((resolve) => setTimeout(resolve, capMs / 2 + Math.random() * (capMs / 2)));
  }

  /** Runs `work` after the store's earlier operations, mapping its errors. */
  #turn<T>(what: string, work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(async () => {
      try {
        return await this.branch.exclusive(work);
      } catch (error) {
        throw gitError(error, what, this.context);
      }
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}
