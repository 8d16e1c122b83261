/**
 * One branch of one repository, as the store reads and writes it: brought up to its tip, and
 * moved to a new commit by compare-and-swap. Over HTTP(S) the objects live in a local cache
 * gitdir and the swap is a fast-forward push of the commit itself (the server refuses it when
 * the branch moved); for a `file://` repository the bare repository itself is the gitdir and the
 * swap takes git's own `<ref>.lock`, so it also holds against the git CLI writing there.
 */
import * as fs from "node:fs";
import { access, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { TernError } from "@tern/core";
import { atomicFs, gitCode, isogit, timedHttp } from "./git.js";
import { exclusive } from "./lock.js";
import type { ObjectDb } from "./tree.js";

/** A tip of the branch, and whether it was read from the repository just now. */
export interface View {
  readonly tip: string | undefined;
  /** False for the tip this machine saw last, which may have moved since (`advance` finds out). */
  readonly current: boolean;
}

export interface Branch extends ObjectDb {
  /** The branch's tip once its objects are here; undefined while the branch does not exist. */
  sync(): Promise<string | undefined>;
  /** The tip as this machine last saw it, without a request when it has one; else as `sync` finds it. */
  known(): Promise<View>;
  /** Makes `commit` the tip if the tip is still `parent`: "stale" when another writer moved it first. */
  advance(commit: string, parent: string | undefined): Promise<"advanced" | "stale">;
  /** Runs `work` with this machine's other processes kept out of the branch's local objects. */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
}

/** A branch of a repository served over smart HTTP(S), cached in `gitdir`. */
export class RemoteBranch implements Branch {
  /** Parsed packs, kept while the tip stays the same (dropped at each fetch, so memory does not grow). */
  cache: object = {};
  readonly fs = atomicFs;
  readonly #ref: string;

  constructor(
    readonly url: string,
    readonly branch: string,
    readonly gitdir: string,
    /** Request headers (authorization), built per call: isomorphic-git changes the object it is given. */
    readonly headers: () => Promise<Record<string, string>>,
  ) {
    this.#ref = `refs/heads/${branch}`;
  }

  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return exclusive(`${this.gitdir}.lock`, work);
  }

  async known(): Promise<View> {
    await this.#init();
    const local = await this.#local();
    return local === undefined ? { tip: await this.sync(), current: true } : { tip: local, current: false };
  }

  async sync(): Promise<string | undefined> {
    const { git, http } = await isogit();
    await this.#init();
    const local = await this.#local();
    // With nothing here, the fetch itself finds the tip (asking first would be two requests more).
    if (local !== undefined) {
      const tip = await this.#remoteTip();
      if (tip === undefined || tip === local) return tip;
    }
    // By the branch's name, so that the local branch is what we "have": only new commits come; the
    // remote ref in full, so that a tag of the same name is never what comes. The first fetch
    // takes only the tip's snapshot.
    let fetched: Awaited<ReturnType<typeof git.fetch>>;
    try {
      fetched = await git.fetch({
        fs: this.fs,
        http: timedHttp(http),
        gitdir: this.gitdir,
        cache: this.cache,
        remote: "origin",
        ref: this.branch,
        remoteRef: this.#ref,
        singleBranch: true,
        tags: false,
        headers: await this.headers(),
        ...(local === undefined ? { depth: 1 } : {}),
      });
    } catch (error) {
      // The server has no such branch (yet).
      if (gitCode(error) === "NotFoundError" && (error as { data?: { what?: string } }).data?.what === this.#ref) {
        return undefined;
      }
      throw error;
    }
    // An empty repository: no branch at all.
    if (fetched.fetchHead === null) return undefined;
    const head = fetched.fetchHead;
    // The local branch names only objects that are here: it moves once the fetch is complete.
    await git.writeRef({ fs: this.fs, gitdir: this.gitdir, ref: this.#ref, value: head, force: true });
    this.cache = {};
    return head;
  }

  async advance(commit: string, parent: string | undefined): Promise<"advanced" | "stale"> {
    const { git, http } = await isogit();
    let moved = false;
    try {
      // The commit itself, not a local ref another write could move in between.
      await git.push({
        fs: this.fs,
        http: timedHttp(http),
        gitdir: this.gitdir,
        cache: this.cache,
        url: this.url,
        ref: commit,
        remoteRef: this.#ref,
        headers: await this.headers(),
        // The server's tip as its advertisement says, before anything is sent: pushed only when it
        // is `parent`, and receive-pack then moves the branch only if it is still that tip.
        onPrePush: ({ remoteRef }) => {
          moved = remoteRef.oid !== (parent ?? NO_COMMIT);
          return !moved;
        },
      });
    } catch (error) {
      if (moved && gitCode(error) === "UserCanceledError") return "stale";
      if (gitCode(error) === "PushRejectedError") return "stale";
      // receive-pack says "failed to update ref" for a lost race and for its own troubles alike:
      // the branch tells which.
      if (gitCode(error) === "GitPushError" && (await this.#remoteTip()) !== parent) return "stale";
      throw error;
    }
    await git.writeRef({ fs: this.fs, gitdir: this.gitdir, ref: this.#ref, value: commit, force: true });
    return "advanced";
  }

  async #remoteTip(): Promise<string | undefined> {
    const { git, http } = await isogit();
    const refs = await git.listServerRefs({
      http: timedHttp(http),
      url: this.url,
      prefix: this.#ref,
      headers: await this.headers(),
    });
    return refs.find((r) => r.ref === this.#ref)?.oid;
  }

  /** The local branch, a hint of what is here: unreadable is the same as absent. */
  async #local(): Promise<string | undefined> {
    try {
      return await resolveBranch(this.gitdir, this.#ref);
    } catch {
      return undefined;
    }
  }

  /** Makes the cache gitdir (again, when it was deleted): bare, with the remote to fetch from. */
  async #init(): Promise<void> {
    const config = join(this.gitdir, "config");
    if (await exists(config)) return;
    const { git } = await isogit();
    await mkdir(this.gitdir, { recursive: true });
    await git.init({ fs: this.fs, gitdir: this.gitdir, bare: true, defaultBranch: this.branch });
    // fetch reads the URL from the remote's configuration.
    await git.addRemote({ fs: this.fs, gitdir: this.gitdir, remote: "origin", url: this.url, force: true });
  }
}

/** The id git's protocol gives a ref that does not exist. */
const NO_COMMIT = "0".repeat(40);

/** A lock file older than this was left by a writer that died. */
const STALE_REF_LOCK_MS = 60_000;

/** A branch of a bare repository on this machine's disk (a `file://` URL), read and written in place. */
export class LocalBranch implements Branch {
  readonly cache = {};
  readonly fs = atomicFs;
  readonly #ref: string;
  #checked: Promise<void> | undefined;

  constructor(
    readonly gitdir: string,
    readonly branch: string,
    readonly url: string,
  ) {
    this.#ref = `refs/heads/${branch}`;
  }

  /** Writers on other machines share the disk: the ref's lock is what keeps them apart. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }

  /** The repository is here: its tip is always the current one. */
  async known(): Promise<View> {
    return { tip: await this.sync(), current: true };
  }

  async sync(): Promise<string | undefined> {
    this.#checked ??= this.#check();
    await this.#checked;
    return resolveBranch(this.gitdir, this.#ref);
  }

  /** git's own protocol: create `<ref>.lock` exclusively, check the tip, write, rename over the ref. */
  async advance(commit: string, parent: string | undefined): Promise<"advanced" | "stale"> {
    const path = join(this.gitdir, this.#ref);
    await mkdir(dirname(path), { recursive: true });
    let lock: Awaited<ReturnType<typeof open>>;
    try {
      lock = await open(`${path}.lock`, "wx");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const age = Date.now() - (await stat(`${path}.lock`).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > STALE_REF_LOCK_MS) {
        throw new TernError(
          "STORAGE",
          `${path}.lock has been there for ${Math.round(age / 1000)} s: a writer died while moving the branch. Remove the file once no git process is using the repository.`,
        );
      }
      // Another writer is moving the ref: our parent is about to be stale.
      return "stale";
    }
    let renamed = false;
    try {
      if ((await resolveBranch(this.gitdir, this.#ref)) !== parent) return "stale";
      await lock.writeFile(`${commit}\n`);
      await lock.sync();
      await lock.close();
      await rename(`${path}.lock`, path);
      renamed = true;
      return "advanced";
    } finally {
      if (!renamed) {
        await lock.close().catch(() => {});
        await rm(`${path}.lock`, { force: true });
      }
    }
  }

  /** A file:// URL must name a bare repository: a mistyped path would otherwise become one. */
  async #check(): Promise<void> {
    let config = "";
    try {
      config = await readFile(join(this.gitdir, "config"), "utf8");
    } catch {
      // Checked below.
    }
    if (!/bare\s*=\s*true/.test(config)) {
      throw new TernError(
        "STORAGE_BUCKET",
        `${this.url} is not a bare Git repository. Create it with git init --bare ${this.gitdir}, or fix the url option.`,
      );
    }
  }
}

/** The commit `ref` names in `gitdir` (packed refs included), or undefined when it does not exist. */
async function resolveBranch(gitdir: string, ref: string): Promise<string | undefined> {
  const { git } = await isogit();
  try {
    return await git.resolveRef({ fs, gitdir, ref });
  } catch (error) {
    if (gitCode(error) === "NotFoundError") return undefined;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
