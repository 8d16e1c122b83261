/**
 * `pnpm bench storage [server...]`: tern's storage path for a 1 MB and a 10 MB bundle on each
 * local server (s3rver, azurite, the Cloud Storage emulator, a Git server over HTTP and a bare Git
 * repository on disk), beside the raw library's put and get of the same bytes in the same run.
 * Naming servers runs those only (`pnpm bench storage git-http git-file`). The Docker case
 * (`docker-registry`, a flow image's push beside the same image pushed with bare Distribution API
 * calls, and an unchanged flow's registration) is in bench/storage-docker.ts.
 *
 * tern's path is what registration and loading do with a bundle: `put` (existence check,
 * checksummed create-if-absent write) and `get` with the sha256 check. The raw path is one
 * SDK put and one SDK get. Prints one JSON line per server and size:
 * {"name","server","size_mb","tern_ms","raw_ms","ratio","peak_rss_mb","peak_array_buffers_mb"}
 * Goal: ratio at most 1.2.
 *
 * Git (GitStorage beside isomorphic-git's own calls): `git-http` is `git http-backend` behind
 * test support's HTTP front, `git-file` a bare repository on disk (file://); tern and the raw
 * side each have a repository of their own on the same server, with the same branch.
 * - The put is a registration from a machine that wrote to the branch before (its cache is warm,
 *   as on a developer's machine or a CI runner that keeps TERN_HOME): tern looks the key up in
 *   its copy of the branch, commits and pushes onto the tip it knows (refused if the tip moved).
 *   The raw side is a user's own clone that knows its branch's files: it writes the blob, the
 *   two trees and a commit on its branch, and pushes.
 * - The get is a runner's first read on a machine that never saw the repository (a Fargate task
 *   starts with an empty cache; a local agent's runners share a warm one, which is cheaper):
 *   tern with a new GitStorage whose cache directory does not exist yet (made before the timing,
 *   its first I/O inside it); the raw side what `git.clone` does short of the checkout (init, the
 *   remote, a fetch of the one branch at depth 1, into an empty directory) and a readBlob of the
 *   key in the fetched commit.
 * - On `git-file` there is no cache, push or fetch (isomorphic-git speaks HTTP only): both sides
 *   write the objects into their bare repository and move the branch, then read the blob at the
 *   tip.
 * A fetch brings the branch's whole tree, so after each repeat, outside the timing, both sides
 * remove what it wrote: every get fetches the one object it reads.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { BlobStore } from "@tern/core/plugin";
import { sha256Hex } from "@tern/core/plugin";
import type { LocalServer } from "@tern/test-support/servers";
import { DOCKER_SERVER, dockerCases } from "./storage-docker.js";
import { measured, median, round } from "./support/measure.js";

const SIZES_MB = [1, 10];
const REPEATS = 9;

/** The raw library's calls for one server. */
export interface Raw {
  put(key: string, body: Uint8Array): Promise<void>;
  get(key: string): Promise<Uint8Array>;
  /** When given, each repeat's objects are removed on both sides after it, outside the timing. */
  remove?(key: string): Promise<void>;
}

/** One server: how to start it, tern's store on it, and the raw SDK calls. */
export interface Target {
  readonly server: string;
  start(): Promise<LocalServer>;
  store(server: LocalServer): Promise<BlobStore>;
  /** The store each get reads with, made before it outside the timing (default: the writer's store). */
  reader?(server: LocalServer): Promise<BlobStore>;
  raw(server: LocalServer): Promise<Raw>;
}

async function s3Target(): Promise<Target> {
  const { startS3rver, S3RVER_CREDENTIALS } = await import("@tern/test-support/servers");
  const { S3Storage } = await import("@tern/storage-cloud/s3");
  const sdk = await import("@aws-sdk/client-s3");
  const config = (s: LocalServer) => ({
    region: "us-east-1",
    endpoint: s.endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
  });
  return {
    server: "s3rver",
    start: () => startS3rver(["bench"]),
    store: async (s) => new S3Storage({ bucket: "bench", clientConfig: config(s), conditionalWrites: false }).blobs,
    raw: async (s) => {
      const client = new sdk.S3Client(config(s));
      return {
        put: async (Key, Body) => void (await client.send(new sdk.PutObjectCommand({ Bucket: "bench", Key, Body }))),
        get: async (Key) => {
          const response = await client.send(new sdk.GetObjectCommand({ Bucket: "bench", Key }));
          return (await response.Body?.transformToByteArray()) ?? new Uint8Array();
        },
      };
    },
  };
}

const GIT_BRANCH = "tern-flows";
const GIT_REF = `refs/heads/${GIT_BRANCH}`;
const GIT_AUTHOR = { name: "bench", email: "bench@localhost" };

/**
 * A user's own isomorphic-git calls on a branch whose keys are `<dir>/<name>`: the writer keeps
 * its branch's files and tip in memory (its own clone), writes the blob, the two trees and a
 * commit, then `publish` (a push; nothing for a bare repository written in place); `read` reads
 * a key in a new copy of the branch.
 */
async function rawGit(
  gitdir: string,
  publish: () => Promise<void>,
  read: (key: string) => Promise<Uint8Array>,
): Promise<Raw> {
  const git = (await import("isomorphic-git")).default;
  const files = new Map<string, string>();
  let dir: string | undefined;
  let tip: string | undefined;
  const commit = async (message: string) => {
    const entries = [...files].map(([path, oid]) => ({ mode: "100644", path, oid, type: "blob" as const }));
    const sub = await git.writeTree({ fs, gitdir, tree: entries });
    const root = await git.writeTree({
      fs,
      gitdir,
      tree: dir === undefined || entries.length === 0 ? [] : [{ mode: "040000", path: dir, oid: sub, type: "tree" }],
    });
    const parent = tip === undefined ? [] : [tip];
    tip = await git.commit({ fs, gitdir, ref: GIT_REF, tree: root, parent, message, author: GIT_AUTHOR });
    await publish();
  };
  const split = (key: string) => {
    const [d, name, ...rest] = key.split("/");
    if (d === undefined || name === undefined || rest.length > 0 || (dir !== undefined && d !== dir)) {
      throw new Error(`the raw Git side takes keys <dir>/<name> in one directory, got ${key}`);
    }
    dir = d;
    return name;
  };
  return {
    put: async (key, body) => {
      const name = split(key);
      files.set(name, await git.writeBlob({ fs, gitdir, blob: body }));
      await commit(`add ${key}`);
    },
    get: read,
    remove: async (key) => {
      files.delete(split(key));
      await commit(`remove ${key}`);
    },
  };
}

/** `git http-backend` on loopback: tern's GitStorage and the raw side push to and fetch from a repository each. */
async function gitHttpTarget(): Promise<Target> {
  const { startGitServer } = await import("@tern/test-support/git-server");
  const { GitStorage } = await import("@tern/storage-git");
  const git = (await import("isomorphic-git")).default;
  const http = (await import("isomorphic-git/http/node")).default;
  let work = "";
  let ternUrl = "";
  let rawUrl = "";
  let readers = 0;
  let ternReader = "";
  return {
    server: "git-http",
    start: async () => {
      const server = await startGitServer();
      ternUrl = await server.createRepository("tern", GIT_BRANCH);
      rawUrl = await server.createRepository("raw", GIT_BRANCH);
      work = await mkdtemp(join(tmpdir(), "tern-bench-git-"));
      return {
        endpoint: server.endpoint,
        stop: async () => {
          await server.stop();
          await rm(work, { recursive: true, force: true });
        },
      };
    },
    store: async () => new GitStorage({ url: ternUrl, cacheDirectory: join(work, "tern-writer") }).blobs,
    // A runner's first read: a cache directory that does not exist yet.
    reader: async () => {
      ternReader = join(work, `tern-reader-${++readers}`);
      return new GitStorage({ url: ternUrl, cacheDirectory: ternReader }).blobs;
    },
    raw: async () => {
      const gitdir = join(work, "raw-writer");
      await git.init({ fs, gitdir, bare: true, defaultBranch: GIT_BRANCH });
      let reader = "";
      const raw = await rawGit(
        gitdir,
        async () => void (await git.push({ fs, http, gitdir, url: rawUrl, ref: GIT_REF })),
        async (key) => {
          // What git.clone does, without the checkout: the remote's refspec is what fetch needs.
          reader = join(work, `raw-reader-${++readers}`);
          await git.init({ fs, gitdir: reader, bare: true, defaultBranch: GIT_BRANCH });
          await git.addRemote({ fs, gitdir: reader, remote: "origin", url: rawUrl });
          const { fetchHead } = await git.fetch({
            fs,
            http,
            gitdir: reader,
            remote: "origin",
            ref: GIT_BRANCH,
            singleBranch: true,
            depth: 1,
            tags: false,
          });
          if (fetchHead === null) throw new Error(`${rawUrl} has no branch ${GIT_BRANCH}`);
          return (await git.readBlob({ fs, gitdir: reader, oid: fetchHead, filepath: key })).blob;
        },
      );
      return {
        ...raw,
        // With the repeat's objects, both readers' copies go.
        remove: async (key) => {
          await raw.remove?.(key);
          for (const dir of [reader, ternReader]) await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/** Bare repositories on disk (file://): GitStorage writes and reads one in place, the raw side another. */
async function gitFileTarget(): Promise<Target> {
  const { GitStorage } = await import("@tern/storage-git");
  const git = (await import("isomorphic-git")).default;
  let work = "";
  return {
    server: "git-file",
    start: async () => {
      work = await mkdtemp(join(tmpdir(), "tern-bench-git-file-"));
      for (const name of ["tern.git", "raw.git"]) {
        await git.init({ fs, gitdir: join(work, name), bare: true, defaultBranch: GIT_BRANCH });
      }
      return { endpoint: pathToFileURL(work).href, stop: () => rm(work, { recursive: true, force: true }) };
    },
    store: async () => new GitStorage({ url: pathToFileURL(join(work, "tern.git")).href }).blobs,
    raw: async () => {
      const gitdir = join(work, "raw.git");
      return rawGit(
        gitdir,
        async () => {},
        async (key) => {
          const oid = await git.resolveRef({ fs, gitdir, ref: GIT_REF });
          return (await git.readBlob({ fs, gitdir, oid, filepath: key })).blob;
        },
      );
    },
  };
}

export async function main(args: string[] = []): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const targets: Target[] = [await s3Target()];
  for (const extra of ["azure", "gcs"]) {
    try {
      const module = (await import(`./storage-${extra}.js`)) as { target(): Promise<Target> };
      targets.push(await module.target());
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") throw error;
    }
  }
  targets.push(await gitHttpTarget(), await gitFileTarget());
  const servers = [...targets.map((t) => t.server), DOCKER_SERVER];
  const unknown = args.filter((a) => !servers.includes(a));
  if (unknown.length > 0) throw new Error(`no storage server ${unknown.join(", ")}; servers: ${servers.join(", ")}`);
  const chosen = args.length === 0 ? targets : targets.filter((t) => args.includes(t.server));
  for (const target of chosen) {
    // Dirty pages the previous server left (the Git cases write hundreds of MB) would otherwise
    // be flushed during this one's fsyncs.
    spawnSync("sync");
    const server = await target.start();
    try {
      const store = await target.store(server);
      const raw = await target.raw(server);
      for (const sizeMb of SIZES_MB) {
        const body = new Uint8Array(randomBytes(sizeMb * 1024 * 1024));
        const sha256 = sha256Hex(body);
        const ternMs: number[] = [];
        const rawMs: number[] = [];
        let peakRss = 0;
        let peakArrayBuffers = 0;
        for (let r = 0; r < REPEATS; r++) {
          // Fresh keys every repeat: both sides write new objects.
          const rawRun = await measured(async () => {
            await raw.put(`raw/${sizeMb}-${r}`, body);
            return raw.get(`raw/${sizeMb}-${r}`);
          });
          rawMs.push(rawRun.ms);
          if (sha256Hex(rawRun.value) !== sha256) throw new Error("bytes changed on the raw side's way");
          const reader = (await target.reader?.(server)) ?? store;
          const ternRun = await measured(async () => {
            await store.put(`tern/${sizeMb}-${r}.mjs`, body, { sha256 });
            const bytes = await reader.get(`tern/${sizeMb}-${r}.mjs`);
            if (sha256Hex(bytes) !== sha256) throw new Error("bytes changed on the way");
            return bytes;
          });
          ternMs.push(ternRun.ms);
          if (raw.remove !== undefined) {
            await raw.remove(`raw/${sizeMb}-${r}`);
            await store.delete(`tern/${sizeMb}-${r}.mjs`);
          }
          peakRss = Math.max(peakRss, ternRun.peakRss);
          peakArrayBuffers = Math.max(peakArrayBuffers, ternRun.peakArrayBuffers);
        }
        const tern = median(ternMs);
        const base = median(rawMs);
        console.log(
          JSON.stringify({
            name: "storage",
            server: target.server,
            size_mb: sizeMb,
            tern_ms: round(tern),
            raw_ms: round(base),
            ratio: round(tern / base),
            peak_rss_mb: round(peakRss / 2 ** 20),
            peak_array_buffers_mb: round(peakArrayBuffers / 2 ** 20),
            repeats: REPEATS,
          }),
        );
      }
    } finally {
      await server.stop();
    }
  }
  if (args.length === 0 || args.includes(DOCKER_SERVER)) {
    spawnSync("sync");
    await dockerCases(SIZES_MB, REPEATS);
  }
}
