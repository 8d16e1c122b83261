/**
 * The I/O half of provenance: asks the `git` CLI about the checkout a flow file is in.
 * Registration runs in CI or on a developer's machine, where Git is installed; where it is not,
 * or the file is in no checkout, a flow is registered without a source.
 */
import { execFile } from "node:child_process";
import { realpath } from "node:fs/promises";
import { dirname, relative, sep } from "node:path";
import { type GitCheckout, parsePorcelain, scrubRemoteUrl } from "./source.js";

/** Git's answer: its stdout, or undefined when it failed (not a repository, no such config). */
function git(cwd: string, args: readonly string[]): Promise<string | undefined> {
  // Variables a Git hook sets would point Git at the hook's repository, not at the flow file's.
  const { GIT_DIR: _dir, GIT_WORK_TREE: _tree, GIT_INDEX_FILE: _index, ...env } = process.env;
  return new Promise((resolve) => {
    execFile(
      "git",
      // No optional locks: `git status` would otherwise refresh the index of a checkout that
      // another process (an editor, a concurrent `git commit`) is writing.
      ["--no-optional-locks", ...args],
      { cwd, env, maxBuffer: 64 * 1024 * 1024, windowsHide: true },
      (error, stdout) => resolve(error === null ? stdout : undefined),
    );
  });
}

/**
 * The Git checkout `file` is in: its `origin` (scrubbed of credentials), `HEAD`, the file's
 * path from the work tree's root, and whether the work tree is dirty. Untracked files make it
 * dirty (a flow may import one, and the commit alone would not rebuild the bundle); ignored
 * files do not. Undefined when Git is missing, the file is in no work tree, or the checkout has
 * no commit yet.
 */
export async function readGitCheckout(file: string): Promise<GitCheckout | undefined> {
  let path: string;
  try {
    path = await realpath(file);
  } catch {
    return undefined;
  }
  const cwd = dirname(path);
  const head = await git(cwd, ["rev-parse", "--show-toplevel", "--verify", "HEAD"]);
  const [root, commit] = head?.trim().split("\n") ?? [];
  if (root === undefined || commit === undefined || !/^[0-9a-f]{40,64}$/.test(commit)) return undefined;
  const [origin, status] = await Promise.all([
    git(cwd, ["config", "--get", "remote.origin.url"]),
    git(cwd, ["status", "--porcelain=v1", "-z", "--untracked-files=normal"]),
  ]);
  if (status === undefined) return undefined;
  const changes = parsePorcelain(status);
  const repository = origin?.trim() ? scrubRemoteUrl(origin) : undefined;
  return {
    root,
    changes,
    source: {
      ...(repository === undefined ? {} : { repository }),
      commit,
      path: relative(await realpath(root), path)
        .split(sep)
        .join("/"),
      dirty: changes.length > 0,
    },
  };
}
