/**
 * What keeps GitStorage from waiting forever: the deadline on each HTTP request (a server that
 * takes the connection and goes silent, before its answer, halfway through it, or on a push), and
 * the lock around a cache directory (taken over from a holder that died, waited for while its
 * holder lives, removed however the work ends).
 */
import { access, mkdir, mkdtemp, rm, stat, utimes } from "node:fs/promises";
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { sha256Hex } from "@tern/core/plugin";
import { GitStorage } from "@tern/storage-git";
import { type GitServer, startGitServer } from "@tern/test-support/git-server";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { REQUEST_TIMEOUT_MS, setRequestTimeout } from "../src/git.js";
import { exclusive, type LockTimings } from "../src/lock.js";

/** Long enough for a real request to the test Git server on a busy machine, short enough to wait for. */
const DEADLINE_MS = 1_500;
const TOKEN = "s3cret-deadline-token";

let work: string;
let caches = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tern-git-deadlines-"));
});

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** A node:http server on a random loopback port: resolves it and its `http://127.0.0.1:<port>`. */
async function listen(handle: (request: IncomingMessage, response: ServerResponse) => void) {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe("GitStorage's deadline on each HTTP request", { timeout: 60_000 }, () => {
  beforeAll(() => {
    setRequestTimeout(DEADLINE_MS);
    process.env.TERN_TEST_DEADLINE_TOKEN = TOKEN;
  });

  afterAll(() => {
    setRequestTimeout(undefined);
    delete process.env.TERN_TEST_DEADLINE_TOKEN;
  });

  /** A store with a token and a cache of its own. */
  const store = (url: string) =>
    new GitStorage({
      url,
      auth: { tokenEnv: "TERN_TEST_DEADLINE_TOKEN" },
      cacheDirectory: join(work, `cache-${++caches}`),
    }).blobs;
  const put = (blobs: ReturnType<typeof store>, key: string, text: string) =>
    blobs.put(key, Buffer.from(text), { sha256: sha256Hex(Buffer.from(text)) });

  /** Expects `operation` to fail at the deadline, not before and not much after, with what and where. */
  async function expectGivenUp(operation: () => Promise<unknown>, url: string, what: string): Promise<void> {
    const started = Date.now();
    const error = await operation().then(
      () => undefined,
      (caught: unknown) => caught as Error & { code?: string; retryable?: boolean },
    );
    const elapsed = Date.now() - started;
    expect(error).toMatchObject({ code: "STORAGE_UNAVAILABLE", retryable: true });
    expect(error?.message).toBe(
      `Git repository ${url} (branch tern-flows): cannot ${what}: the server did not complete its answer within ${DEADLINE_MS / 1000} s, so the request was given up.`,
    );
    expect(error?.message).not.toContain(TOKEN);
    expect(elapsed).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
    expect(elapsed).toBeLessThan(DEADLINE_MS + 15_000);
  }

  it("is 120 s unless a test sets it", () => {
    expect(REQUEST_TIMEOUT_MS).toBe(120_000);
  });

  it("gives up a read and a write to a server that takes the connection but never answers, as retryable, naming the URL", async () => {
    const seen: string[] = [];
    const { server, endpoint } = await listen((request) => {
      seen.push(`${request.method} ${request.url} ${request.headers.authorization === undefined ? "" : "with auth"}`);
    });
    try {
      const url = `${endpoint}/flows.git`;
      const blobs = store(url);
      await expectGivenUp(() => blobs.get("flows/a.json"), url, "read flows/a.json");
      await expectGivenUp(() => put(blobs, "flows/a.json", "{}"), url, "write flows/a.json");
      // Both reached the server (with the token), which kept them waiting.
      expect(seen).toEqual([
        "GET /flows.git/info/refs?service=git-upload-pack with auth",
        "GET /flows.git/info/refs?service=git-upload-pack with auth",
      ]);
    } finally {
      await close(server);
    }
  });

  it("gives up an answer that stops halfway, saying so (not that the connection was reset)", async () => {
    const { server, endpoint } = await listen((_request, response) => {
      response.writeHead(200, { "Content-Type": "application/x-git-upload-pack-advertisement" });
      // The first pkt-line of a ref advertisement, then silence.
      response.write("001e# service=git-upload-pack\n");
    });
    try {
      const url = `${endpoint}/flows.git`;
      await expectGivenUp(() => store(url).list("flows/"), url, "list flows/");
    } finally {
      await close(server);
    }
  });

  describe("behind a front that can swallow pushes", () => {
    let git: GitServer;
    let front: Server;
    let endpoint: string;
    let swallowPushes = false;

    beforeAll(async () => {
      git = await startGitServer();
      ({ server: front, endpoint } = await listen((incoming, outgoing) => {
        if (swallowPushes && incoming.url?.endsWith("/git-receive-pack")) {
          // Read the pack, never answer: the push never reaches the repository.
          incoming.resume();
          return;
        }
        const upstream = request(
          `${git.endpoint}${incoming.url}`,
          { method: incoming.method, headers: incoming.headers },
          (answer) => {
            outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(outgoing);
          },
        );
        upstream.on("error", () => outgoing.destroy());
        incoming.pipe(upstream);
      }));
    }, 30_000);

    afterAll(async () => {
      if (front !== undefined) await close(front);
      await git?.stop();
    });

    it("gives up a push the server never answers, and the next write lands once it answers again", async () => {
      await git.createRepository("pushes");
      const url = `${endpoint}/pushes.git`;
      const blobs = store(url);
      expect(await put(blobs, "flows/a.json", "{}")).toBe("created");
      swallowPushes = true;
      try {
        await expectGivenUp(() => put(blobs, "flows/b.json", "[]"), url, "write flows/b.json");
      } finally {
        swallowPushes = false;
      }
      expect(await git.git("pushes", ["log", "--format=%s", "tern-flows"])).toBe("tern: add flows/a.json\n");
      expect(await put(blobs, "flows/b.json", "[]")).toBe("created");
      expect(await store(url).list("flows/")).toEqual(["flows/a.json", "flows/b.json"]);
    });
  });
});

describe("the lock around a cache directory", () => {
  let lock: string;

  beforeEach(async () => {
    lock = join(await mkdtemp(join(work, "lock-")), "cache.lock");
  });

  afterEach(async () => {
    await rm(lock, { recursive: true, force: true });
  });

  it("takes over a lock left by a holder that died (its time long past) and runs the work", async () => {
    await mkdir(lock);
    const past = new Date(Date.now() - 10 * 60_000);
    await utimes(lock, past, past);
    const result = await exclusive(lock, async () => {
      // The lock is this holder's now: made again, with a fresh time.
      expect((await stat(lock)).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
      return "ran";
    });
    expect(result).toBe("ran");
    expect(await exists(lock)).toBe(false);
  });

  it("takes over also when a waiter died while taking over (its guard left, its time long past)", async () => {
    await mkdir(lock);
    await mkdir(`${lock}.takeover`);
    const past = new Date(Date.now() - 10 * 60_000);
    await utimes(lock, past, past);
    await utimes(`${lock}.takeover`, past, past);
    expect(await exclusive(lock, async () => "ran")).toBe("ran");
    expect(await exists(lock)).toBe(false);
    expect(await exists(`${lock}.takeover`)).toBe(false);
  });

  it("lets several waiters take over one dead holder's lock one at a time", async () => {
    for (let round = 0; round < 10; round++) {
      await mkdir(lock);
      const past = new Date(Date.now() - 10 * 60_000);
      await utimes(lock, past, past);
      let inside = 0;
      let most = 0;
      let ran = 0;
      await Promise.all(
        Array.from({ length: 4 }, () =>
          exclusive(lock, async () => {
            most = Math.max(most, ++inside);
            await sleep(10);
            inside--;
            ran++;
          }),
        ),
      );
      expect({ round, most, ran }).toEqual({ round, most: 1, ran: 4 });
    }
  });

  it("waits while another holder's fresh lock is there, then runs the work", async () => {
    await mkdir(lock);
    let ran = false;
    const waiting = exclusive(lock, async () => {
      ran = true;
    });
    await sleep(1_000);
    expect(ran).toBe(false);
    await rm(lock, { recursive: true });
    await waiting;
    expect(ran).toBe(true);
    expect(await exists(lock)).toBe(false);
  });

  it("runs the works of holders in one process one at a time, each of them", async () => {
    let inside = 0;
    let most = 0;
    const ran: number[] = [];
    await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        exclusive(lock, async () => {
          most = Math.max(most, ++inside);
          await sleep(50);
          inside--;
          ran.push(i);
        }),
      ),
    );
    expect(most).toBe(1);
    expect(ran.sort()).toEqual([0, 1, 2, 3]);
  });

  it("removes the lock once the work ends, also when the work throws", async () => {
    await exclusive(lock, async () => {
      expect(await exists(lock)).toBe(true);
    });
    expect(await exists(lock)).toBe(false);
    await expect(
      exclusive(lock, async () => {
        expect(await exists(lock)).toBe(true);
        throw new Error("the work failed");
      }),
    ).rejects.toThrow("the work failed");
    expect(await exists(lock)).toBe(false);
    // Nothing left to wait for.
    const started = Date.now();
    await exclusive(lock, async () => {});
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("keeps a live holder's lock fresh, so that a work longer than the stale time is not taken over", async () => {
    const timings: LockTimings = { staleMs: 400, refreshMs: 100, giveUpMs: 60_000 };
    let inside = 0;
    let most = 0;
    const long = exclusive(
      lock,
      async () => {
        most = Math.max(most, ++inside);
        await sleep(1_500);
        inside--;
      },
      timings,
    );
    await sleep(50);
    let ran = false;
    await exclusive(
      lock,
      async () => {
        most = Math.max(most, ++inside);
        inside--;
        ran = true;
      },
      timings,
    );
    await long;
    expect({ most, ran }).toEqual({ most: 1, ran: true });
  });

  it("gives up waiting for a live holder, as retryable, naming the lock and leaving it", async () => {
    await mkdir(lock);
    let ran = false;
    await expect(
      exclusive(
        lock,
        async () => {
          ran = true;
        },
        { staleMs: 60_000, refreshMs: 20_000, giveUpMs: 300 },
      ),
    ).rejects.toMatchObject({
      code: "STORAGE_UNAVAILABLE",
      retryable: true,
      message: expect.stringContaining(`Another process has held ${lock} for over`),
    });
    expect(ran).toBe(false);
    expect(await exists(lock)).toBe(true);
  });
});
