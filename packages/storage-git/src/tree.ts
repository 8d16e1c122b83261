/**
 * Paths in a commit's tree: reading one file, listing files under a prefix, and writing a new
 * root tree with one path set or removed (each directory on the path rewritten, bottom up). The
 * objects are read from and written to one gitdir with isomorphic-git; nothing is checked out.
 */
import type { PromiseFsClient, TreeEntry } from "isomorphic-git";
import { isogit } from "./git.js";

/** The gitdir the objects live in, the file system to reach it, and a pack cache shared by its reads. */
export interface ObjectDb {
  readonly gitdir: string;
  readonly cache: object;
  readonly fs: PromiseFsClient;
}

/**
 * What is at `path` in `commit`'s tree: a file (its blob), nothing, or "taken" when `path`
 * cannot hold a file (a directory is there, or a file where one of its parents would be).
 */
export async function lookupPath(
  db: ObjectDb,
  commit: string,
  path: string,
): Promise<{ readonly blob: string } | "taken" | undefined> {
  const { git } = await isogit();
  const segments = path.split("/");
  let tree = (await git.readCommit({ ...db, oid: commit })).commit.tree;
  for (const [i, name] of segments.entries()) {
    const entry = (await git.readTree({ ...db, oid: tree })).tree.find((e) => e.path === name);
    if (entry === undefined) return undefined;
    if (i === segments.length - 1) return entry.type === "blob" ? { blob: entry.oid } : "taken";
    if (entry.type !== "tree") return "taken";
    tree = entry.oid;
  }
  return undefined;
}

/** The blob at `path` in `commit`'s tree, or undefined. */
export async function findBlob(db: ObjectDb, commit: string, path: string): Promise<string | undefined> {
  const found = await lookupPath(db, commit, path);
  return typeof found === "object" ? found.blob : undefined;
}

/** Every file path under `prefix` (a key prefix, not only whole directories) in `commit`'s tree, sorted. */
export async function listFiles(db: ObjectDb, commit: string, prefix: string): Promise<string[]> {
  const { git } = await isogit();
  const found: string[] = [];
  const walk = async (tree: string, base: string): Promise<void> => {
    for (const entry of (await git.readTree({ ...db, oid: tree })).tree) {
      const path = base === "" ? entry.path : `${base}/${entry.path}`;
      // Only directories that may hold a match: a prefix of the path, or the path a prefix of it.
      if (!path.startsWith(prefix) && !prefix.startsWith(`${path}/`) && prefix !== path) continue;
      if (entry.type === "tree") await walk(entry.oid, path);
      else if (entry.type === "blob" && path.startsWith(prefix)) found.push(path);
    }
  };
  const root = (await git.readCommit({ ...db, oid: commit })).commit.tree;
  await walk(root, "");
  return found.sort();
}

/**
 * The root tree of `commit` (none: an empty tree) with `path` holding `blob`, or removed when
 * `blob` is undefined (empty directories left behind are removed too). Resolves the new root
 * tree's oid, or undefined when the tree would be empty.
 */
export async function withPath(
  db: ObjectDb,
  commit: string | undefined,
  path: string,
  blob: string | undefined,
): Promise<string | undefined> {
  const { git } = await isogit();
  const root = commit === undefined ? undefined : (await git.readCommit({ ...db, oid: commit })).commit.tree;
  return rewrite(db, root, path.split("/"), blob);
}

async function rewrite(
  db: ObjectDb,
  tree: string | undefined,
  segments: readonly string[],
  blob: string | undefined,
): Promise<string | undefined> {
  const { git } = await isogit();
  const [name, ...rest] = segments as [string, ...string[]];
  const entries: TreeEntry[] =
    tree === undefined ? [] : (await git.readTree({ ...db, oid: tree })).tree.filter((e) => e.path !== name);
  let child: TreeEntry | undefined;
  if (rest.length === 0) {
    if (blob !== undefined) child = { mode: "100644", path: name, oid: blob, type: "blob" };
  } else {
    const existing =
      tree === undefined
        ? undefined
        : (await git.readTree({ ...db, oid: tree })).tree.find((e) => e.path === name && e.type === "tree");
    const sub = await rewrite(db, existing?.oid, rest, blob);
    if (sub !== undefined) child = { mode: "040000", path: name, oid: sub, type: "tree" };
  }
  if (child !== undefined) entries.push(child);
  if (entries.length === 0) return undefined;
  return git.writeTree({ fs: db.fs, gitdir: db.gitdir, tree: entries });
}
