/**
 * Files from this machine as layer entries: a file, or a directory's whole tree (regular files
 * with their executable bit, directories, symbolic links as links), under a path in the image.
 */
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { TernError } from "@tern/core";
import type { LayerEntry } from "./layer.js";

/** The entries of `localPath` (a file or a directory) placed at `imagePath`. */
export async function treeEntries(localPath: string, imagePath: string): Promise<LayerEntry[]> {
  const stats = await lstat(localPath).catch((error: NodeJS.ErrnoException) => {
    throw new TernError(
      "STORAGE_OPTIONS",
      `DockerStorage: files: ${JSON.stringify(localPath)} (${resolve(localPath)}) cannot be read (${error.code ?? error.message}). Give a file or directory that exists, relative to the working directory.`,
    );
  });
  if (stats.isSymbolicLink()) return [{ kind: "symlink", path: imagePath, target: await readlink(localPath) }];
  if (stats.isFile()) return [{ kind: "file", path: imagePath, content: await readFile(localPath), mode: stats.mode }];
  if (!stats.isDirectory()) {
    throw new TernError(
      "STORAGE_OPTIONS",
      `DockerStorage: files: ${JSON.stringify(localPath)} is neither a file, a directory nor a link; it cannot go into an image.`,
    );
  }
  const entries: LayerEntry[] = [{ kind: "directory", path: imagePath }];
  for (const name of (await readdir(localPath)).sort()) {
    entries.push(...(await treeEntries(join(localPath, name), `${imagePath}/${name}`)));
  }
  return entries;
}
