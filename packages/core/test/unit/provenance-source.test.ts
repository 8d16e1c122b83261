import { describe, expect, it } from "vitest";
import { isTernError } from "../../src/errors.js";
import { parsePorcelain, requireCleanCheckout, scrubRemoteUrl } from "../../src/provenance/source.js";

describe("scrubRemoteUrl", () => {
  it.each([
    ["https://x-access-token:ghp_secret@github.com/acme/flows.git", "https://github.com/acme/flows.git"],
    [
      "https://oauth2:glpat-secret@gitlab.example.com:8443/acme/flows.git",
      "https://gitlab.example.com:8443/acme/flows.git",
    ],
    ["https://ghp_secret@github.com/acme/flows.git", "https://github.com/acme/flows.git"],
    ["https://github.com/acme/flows.git?token=secret#frag", "https://github.com/acme/flows.git"],
    ["ssh://git:secret@host.example/acme/flows.git", "ssh://host.example/acme/flows.git"],
    ["git@github.com:acme/flows.git", "git@github.com:acme/flows.git"],
    ["deploy:secret@github.com:acme/flows.git", "github.com:acme/flows.git"],
    ["/srv/git/flows.git", "/srv/git/flows.git"],
    ["file:///srv/git/flows.git", "file:///srv/git/flows.git"],
    ["https://github.com/acme/flows.git\n", "https://github.com/acme/flows.git"],
  ])("keeps no credentials of %s", (url, expected) => {
    expect(scrubRemoteUrl(url)).toBe(expected);
  });

  it("drops everything up to the last @ of a URL the parser refuses", () => {
    const scrubbed = scrubRemoteUrl("https://user:pa/ss@host.example:99999/acme/flows.git");
    expect(scrubbed).toBe("https://host.example:99999/acme/flows.git");
    expect(scrubbed).not.toMatch(/pa|ss@/);
  });
});

describe("parsePorcelain", () => {
  it("lists changed, staged and untracked paths, a rename once under its new name", () => {
    const output = [" M flows/etl.ts", "A  new.ts", "R  renamed.ts", "old.ts", "?? notes/", "D  gone.ts", ""].join(
      "\0",
    );
    expect(parsePorcelain(output)).toEqual(["flows/etl.ts", "new.ts", "renamed.ts", "notes/", "gone.ts"]);
  });

  it("lists nothing for a clean work tree", () => {
    expect(parsePorcelain("")).toEqual([]);
  });
});

describe("requireCleanCheckout", () => {
  const source = { commit: "a".repeat(40), path: "flows/etl.ts", dirty: true };

  it("passes a clean checkout and a file outside any checkout", () => {
    expect(() =>
      requireCleanCheckout("etl", { source: { ...source, dirty: false }, root: "/r", changes: [] }),
    ).not.toThrow();
    expect(() => requireCleanCheckout("etl", undefined)).not.toThrow();
  });

  it("rejects a dirty checkout, naming the flow, the checkout, the count and the fix", () => {
    const changes = ["a.ts", "b.ts", "c.ts", "d.ts", "e.ts", "f.ts", "g.ts"];
    let error: unknown;
    try {
      requireCleanCheckout("etl", { source, root: "/work/repo", changes });
    } catch (e) {
      error = e;
    }
    expect(isTernError(error, "DIRTY_CHECKOUT")).toBe(true);
    expect((error as Error).message).toBe(
      'Flow "etl" (flows/etl.ts): the Git checkout /work/repo has 7 uncommitted changes (a.ts, b.ts, c.ts, d.ts, e.ts and 2 more), ' +
        "and a clean checkout is required (requireClean). Commit the changes (untracked files count too: " +
        "commit them or list them in .gitignore), or stash them, and register again.",
    );
  });

  it("rejects a given dirty source by its flag", () => {
    expect(() => requireCleanCheckout("etl", { source })).toThrow(
      /the Git checkout of commit a{40} has uncommitted changes/,
    );
  });
});
