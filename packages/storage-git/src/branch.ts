/**
 * One branch of one repository, as the store reads and writes it: brought up to its tip, and
 * moved to a new commit by compare-and-swap. Over HTTP(S) the objects live in a local cache
 * gitdir and the swap is a fast-forward push (the server refuses it when the branch moved); for a
 * `file://` repository the bare repository itself is the gitdir and the swap takes git's own
 * `<ref>.lock`, so it also holds against the git CLI writing there.
 */
import * as fs from "node:fs";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { gitCode, isogit } from "./git.js";
import type { ObjectDb } from "./tree.js";

export interface Branch extends ObjectDb {
  /** The branch's tip once its objects are here; undefined while the branch does not exist. */
  sync(): Promise<string | undefined>;
  /** Makes `commit` the tip if the tip is still `parent`: "stale" when another writer moved it first. */
  advance(commit: string, parent: string | undefined): Promise<"advanced" | "stale">;
}

/** A branch of a repository served over smart HTTP(S), cached in `gitdir`. */
export class RemoteBranch implements Branch {
  readonly cache = {};
  readonly #ref: string;
  #ready: Promise<void> | undefined;

  constructor(
    readonly url: string,
    readonly branch: string,
    readonly gitdir: string,
    /** Request headers (authorization), built per call: isomorphic-git changes the object it is given. */
    readonly headers: () => Promise<Record<string, string>>,
  ) {
    this.#ref = `refs/heads/${branch}`;
  }

  async sync(): Promise<string | undefined> {
    const { git, http } = await isogit();
    await this.#init();
    const refs = await git.listServerRefs({ http, url: this.url, prefix: this.#ref, headers: await this.headers() });
    const tip = refs.find((r) => r.ref === this.#ref)?.oid;
    if (tip === undefined) return undefined;
    const local = await this.#local();
    if (tip === local) return tip;
    // The first fetch takes only the tip's snapshot; later ones send the local tip as what we
    // have, so only the new commits come. By the tip's id, so that a remote HEAD naming a
    // branch that does not exist (a repository whose only branch is this one) does not matter.
    await git.fetch({
      fs,
      http,
      gitdir: this.gitdir,
      cache: this.cache,
      remote: "origin",
      ref: tip,
      singleBranch: true,
      tags: false,
      headers: await this.headers(),
      ...(local === undefined ? { depth: 1 } : {}),
    });
    await git.writeRef({ fs, gitdir: this.gitdir, ref: this.#ref, value: tip, force: true });
    return tip;
  }

  async advance(commit: string, parent: string | undefined): Promise<"advanced" | "stale"> {
    const { git, http } = await isogit();
    await git.writeRef({ fs, gitdir: this.gitdir, ref: this.#ref, value: commit, force: true });
    try {
      await git.push({
        fs,
        http,
        gitdir: this.gitdir,
        cache: this.cache,
        url: this.url,
        ref: this.#ref,
        remoteRef: this.#ref,
        headers: await this.headers(),
      });
      return "advanced";
    } catch (error) {
      if (parent === undefined) await rm(join(this.gitdir, this.#ref), { force: true });
      else await git.writeRef({ fs, gitdir: this.gitdir, ref: this.#ref, value: parent, force: true });
      if (lostRace(error, this.#ref)) return "stale";
      throw error;
    }
  }

  #local(): Promise<string | undefined> {
    return resolveBranch(this.gitdir, this.#ref);
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      const { git } = await isogit();
      await mkdir(this.gitdir, { recursive: true });
      await git.init({ fs, gitdir: this.gitdir, bare: true, defaultBranch: this.branch });
      // fetch needs a remote to read its refspec from, even when given the URL.
      await git.addRemote({ fs, gitdir: this.gitdir, remote: "origin", url: this.url, force: true });
    })();
    return this.#ready;
  }
}

/** Whether a push failed because the branch moved since it was read (another writer pushed first). */
function lostRace(error: unknown, ref: string): boolean {
  if (gitCode(error) === "PushRejectedError") return true;
  if (gitCode(error) === "GitPushError") {
    const refs = (
      (error as { data?: unknown }).data as { result?: { refs?: Record<string, { ok: boolean; error?: string }> } }
    ).result?.refs;
    const outcome = refs?.[ref];
    return (
      outcome !== undefined &&
      !outcome.ok &&
      /failed to update ref|non-fast-forward|fetch first/.test(outcome.error ?? "")
    );
  }
  return false;
}

/** A branch of a bare repository on this machine's disk (a `file://` URL), read and written in place. */
export class LocalBranch implements Branch {
  readonly cache = {};
  readonly #ref: string;

  constructor(
    readonly gitdir: string,
    readonly branch: string,
  ) {
    this.#ref = `refs/heads/${branch}`;
  }

  sync(): Promise<string | undefined> {
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
      // Another writer holds the ref: it is moving it, so our parent is about to be stale.
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return "stale";
      throw error;
    }
    let renamed = false;
    try {
      if ((await this.sync()) !== parent) return "stale";
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
}

/** Whether `gitdir` looks like a bare repository (for the error when a file:// URL names something else). */
export async function isBareRepository(gitdir: string): Promise<boolean> {
  try {
    const config = await readFile(join(gitdir, "config"), "utf8");
    return /bare\s*=\s*true/.test(config);
  } catch {
    return false;
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
