/**
 * Files from this machine as layer entries: a file, or a directory's whole tree (regular files
 * with their executable bit, directories, symbolic links as links), under a path in the image.
 * A link whose target is an absolute path inside the tree is made relative, so that it holds in
 * the image; one that leads outside the tree is refused (the image would not have its target).
 */
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { TernError } from "@tern/core";
import type { LayerEntry } from "./layer.js";

/** Options of {@link treeEntries}. */
export interface TreeOptions {
  /** Paths (relative to the tree, `/`-separated) left out. */
  readonly skip?: (relativePath: string) => boolean;
  /** What the message of a refused link says to do instead. @default "copy what it points to into the tree" */
  readonly outsideLinkFix?: string;
}

/** The entries of `localPath` (a file or a directory) placed at `imagePath`. */
export async function treeEntries(
  localPath: string,
  imagePath: string,
  options: TreeOptions = {},
): Promise<LayerEntry[]> {
  const root = resolve(localPath);
  const entries: LayerEntry[] = [];
  const visit = async (full: string): Promise<void> => {
    const rel = relative(root, full).split(sep).join("/");
    if (rel !== "" && options.skip?.(rel) === true) return;
    const path = rel === "" ? imagePath : `${imagePath}/${rel}`;
    const stats = await lstat(full).catch((error: NodeJS.ErrnoException) => {
      throw new TernError(
        "STORAGE_OPTIONS",
        `DockerStorage: files: ${JSON.stringify(localPath)} (${root}) cannot be read (${error.code ?? error.message}). Give a file or directory that exists, relative to the working directory.`,
      );
    });
    if (stats.isSymbolicLink()) {
      entries.push({ kind: "symlink", path, target: await linkTarget(root, full, options) });
    } else if (stats.isFile()) {
      entries.push({ kind: "file", path, content: await readFile(full), mode: stats.mode });
    } else if (stats.isDirectory()) {
      entries.push({ kind: "directory", path });
      for (const name of await readdir(full)) await visit(join(full, name));
    } else {
      throw new TernError(
        "STORAGE_OPTIONS",
        `DockerStorage: ${full} is neither a file, a directory nor a link; it cannot go into an image.`,
      );
    }
  };
  await visit(root);
  return entries;
}

/** A link's target as the image needs it: relative when it is an absolute path inside the tree. */
async function linkTarget(root: string, full: string, options: TreeOptions): Promise<string> {
  const target = await readlink(full);
  if (!isAbsolute(target)) return target;
  const inside = relative(root, target);
  if (inside.startsWith("..") || isAbsolute(inside)) {
    throw new TernError(
      "STORAGE_OPTIONS",
      `DockerStorage: ${full} is a link to ${target}, outside ${root}, which the image would not have: ${options.outsideLinkFix ?? "copy what it points to into the tree"}.`,
    );
  }
  return relative(dirname(full), target).split(sep).join("/");
}
