/**
 * The pure half of provenance: what a Git checkout's answers mean for a flow version's
 * `source`. `git.ts` asks Git; these functions decide, with no I/O.
 */
import type { FlowSource } from "../backend/types.js";
import { TernError } from "../errors.js";

/** A flow file's Git checkout: the source to record, and the files that make it dirty. */
export interface GitCheckout {
  readonly source: FlowSource;
  /** The work tree's root. */
  readonly root: string;
  /** Changed, staged and untracked paths (relative to the root), as `git status` lists them. */
  readonly changes: readonly string[];
}

/**
 * A remote URL that can be shown and stored: user info (a token, a password), query and
 * fragment removed. An scp-like address (`git@github.com:org/repo.git`) keeps its user, which
 * names an SSH account, not a secret, unless it carries a `:` (`user:token@host:path`). A local
 * path is kept. A URL the parser refuses loses everything between `://` and its last `@`, so
 * nothing that may be a credential survives a malformed URL.
 */
export function scrubRemoteUrl(url: string): string {
  const text = url.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const scp = /^([^@/]*)@([^@/:]+:.*)$/.exec(text);
    return scp !== null && (scp[1] as string).includes(":") ? (scp[2] as string) : text;
  }
  try {
    const parsed = new URL(text);
    parsed.username = "";
    parsed.password = "";
    parsed.search = "";
    parsed.hash = "";
    return parsed.href;
  } catch {
    const scheme = text.indexOf("://") + 3;
    const at = text.lastIndexOf("@");
    const kept = at >= scheme ? text.slice(0, scheme) + text.slice(at + 1) : text;
    return kept.replace(/[?#].*$/, "");
  }
}

/**
 * The paths `git status --porcelain=v1 -z` lists: one entry per changed, staged or untracked
 * file (a rename's or copy's entry is followed by its old path, which is skipped).
 */
export function parsePorcelain(output: string): string[] {
  const fields = output.split("\0");
  const paths: string[] = [];
  for (let i = 0; i < fields.length; i++) {
    const entry = fields[i] as string;
    if (entry.length < 4) continue;
    paths.push(entry.slice(3));
    if (entry[0] === "R" || entry[0] === "C") i++;
  }
  return paths;
}

/** How many changed paths a refusal names before it says "and N more". */
const NAMED_CHANGES = 5;

/**
 * Refuses a flow whose checkout is dirty (`requireClean`), naming the checkout, how many
 * files differ (the first few of them) and the fix. A flow outside a checkout passes: it has
 * nothing to be clean about, and is registered without a source. A source given by the caller
 * (no checkout read) is refused on its `dirty` flag alone.
 */
export function requireCleanCheckout(
  flow: string,
  checkout: (Pick<GitCheckout, "source"> & Partial<GitCheckout>) | undefined,
): void {
  if (checkout === undefined || !checkout.source.dirty) return;
  const { changes = [], root, source } = checkout;
  const named = changes.slice(0, NAMED_CHANGES).join(", ");
  const more = changes.length > NAMED_CHANGES ? ` and ${changes.length - NAMED_CHANGES} more` : "";
  const what =
    changes.length === 0
      ? "uncommitted changes"
      : `${changes.length} uncommitted ${changes.length === 1 ? "change" : "changes"} (${named}${more})`;
  throw new TernError(
    "DIRTY_CHECKOUT",
    `Flow "${flow}" (${source.path}): the Git checkout ${root ?? `of commit ${source.commit}`} has ${what}, ` +
      "and a clean checkout is required (requireClean). Commit the changes (untracked files count too: " +
      "commit them or list them in .gitignore), or stash them, and register again.",
  );
}
