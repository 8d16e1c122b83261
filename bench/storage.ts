/**
 * `pnpm bench storage`: tern's storage path for a 1 MB and a 10 MB bundle on each local server
 * (s3rver, azurite, the Cloud Storage emulator), beside the raw SDK put and get of the same bytes
 * in the same run.
 *
 * tern's path is what registration and loading do with a bundle: `put` (existence check,
 * checksummed create-if-absent write) and `get` with the sha256 check. The raw path is one
 * SDK put and one SDK get. Prints one JSON line per server and size:
 * {"name","server","size_mb","tern_ms","raw_ms","ratio","peak_rss_mb","peak_array_buffers_mb"}
 * Goal: ratio at most 1.2.
 */
import { randomBytes } from "node:crypto";
import type { BlobStore } from "@tern/core/plugin";
import { sha256Hex } from "@tern/core/plugin";
import type { LocalServer } from "@tern/test-support/servers";

const SIZES_MB = [1, 10];
const REPEATS = 9;

/** One server: how to start it, tern's store on it, and the raw SDK calls. */
export interface Target {
  readonly server: string;
  start(): Promise<LocalServer>;
  store(server: LocalServer): Promise<BlobStore>;
  raw(
    server: LocalServer,
  ): Promise<{ put(key: string, body: Uint8Array): Promise<void>; get(key: string): Promise<Uint8Array> }>;
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

/** Samples memory while `fn` runs. */
async function measured<T>(
  fn: () => Promise<T>,
): Promise<{ ms: number; peakRss: number; peakArrayBuffers: number; value: T }> {
  let peakRss = 0;
  let peakArrayBuffers = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 5);
  sample();
  const t0 = performance.now();
  try {
    const value = await fn();
    return { ms: performance.now() - t0, peakRss, peakArrayBuffers, value };
  } finally {
    clearInterval(timer);
    sample();
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

export async function main(): Promise<void> {
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
  for (const target of targets) {
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
          const ternRun = await measured(async () => {
            await store.put(`tern/${sizeMb}-${r}.mjs`, body, { sha256 });
            const bytes = await store.get(`tern/${sizeMb}-${r}.mjs`);
            if (sha256Hex(bytes) !== sha256) throw new Error("bytes changed on the way");
            return bytes;
          });
          ternMs.push(ternRun.ms);
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
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
