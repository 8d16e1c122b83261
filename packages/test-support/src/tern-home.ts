/**
 * A throwaway TERN_HOME, for tests of code that finds its home through the variable (a
 * LocalStorage without a directory, the runner's state): made and set before the tests, removed
 * after them, and the variable put back as it was, so that no test writes to the user's home.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";

/**
 * Registers the hooks in the calling file or describe block: a new home for each test (`"test"`)
 * or one for them all (`"file"`), named `<prefix>…` under the OS temp directory. The returned
 * object's `path` is the current home once the hooks ran.
 */
export function useTempTernHome(prefix: string, per: "test" | "file" = "test"): { readonly path: string } {
  const home = { path: "" };
  const saved = process.env.TERN_HOME;
  const [before, after] = per === "test" ? [beforeEach, afterEach] : [beforeAll, afterAll];
  before(async () => {
    home.path = await mkdtemp(join(tmpdir(), prefix));
    process.env.TERN_HOME = home.path;
  });
  after(async () => {
    if (saved === undefined) delete process.env.TERN_HOME;
    else process.env.TERN_HOME = saved;
    if (home.path !== "") await rm(home.path, { recursive: true, force: true });
  });
  return home;
}
