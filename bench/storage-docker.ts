/**
 * The Docker case of `pnpm bench storage` (`pnpm bench storage docker-registry`; imported by
 * bench/storage.ts, not run by itself): DockerStorage's image push at registration beside the
 * same image pushed with bare Distribution API calls, on Debian's docker-registry (test support's
 * `startRegistry`) on loopback, with a base image already in the registry (`pushBaseImage`: an
 * index of two platforms, two small layers each).
 *
 * - `push`: a flow whose bundle is `size_mb` of new random bytes each repeat, as registration
 *   pushes it: DockerStorage's `upload` then `writeManifest`, on a new DockerStorage each time as
 *   a `tern register` process has (the flow planned once before the timing, its manifest given
 *   each repeat's bundle, so neither esbuild nor the backend is timed). That reads the base's
 *   index, manifest and config, builds the flow layer (tar and gzip of the bundle and manifest),
 *   looks for the image's tag and the blobs, uploads the layer and the config and puts the
 *   manifest. The raw side then pushes the same image (the layer, config and manifest tern
 *   pushed, read back outside the timing: the same bytes) into a repository of its own whose base
 *   layers were mounted once before: the digests of the layer and the config, a POST and a PUT
 *   with the digest for each, and the manifest's PUT. `requests` and `raw_requests` are counted
 *   by method through a recording proxy in front of the registry, on one more push of each side
 *   after the timed ones; `gzip_ms` is zlib gzipping the layer's tar alone as DockerStorage does
 *   for bytes that do not compress (level 0). Goal: ratio at most 1.5.
 * - `unchanged`: the last bundle registered again, as an unchanged flow's registration does it
 *   (its image is there under its content-derived tag). Goal: no blob uploaded (`blobs_uploaded`,
 *   the uploads the proxy saw completed, and `bytes_uploaded`, what DockerStorage reports, are 0).
 *
 * Each side's timing starts from a collected heap; medians of the repeats, after a warm-up pair.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { gunzipSync, gzip } from "node:zlib";
import type { Flow } from "@tern/core";
import { type PlannedFlow, sha256Hex } from "@tern/core/plugin";
import { DockerStorage, OCI_MANIFEST } from "@tern/storage-docker";
import { startProxy } from "@tern/test-support/fault-proxy";
import { startRegistry } from "@tern/test-support/registry";
import { pushBaseImage } from "@tern/test-support/registry-images";
import { measured, median, round } from "./support/measure.js";

/** The server's name on the command line and in the JSON lines. */
export const DOCKER_SERVER = "docker-registry";
const GOAL_RATIO = 1.5;
const BASE_REPOSITORY = "base/node";
const TERN_REPOSITORY = "bench/tern";
const RAW_REPOSITORY = "bench/raw";

/** An image as the registry holds it: the bytes the raw side pushes again. */
interface PushedImage {
  readonly layer: Uint8Array;
  readonly config: Uint8Array;
  readonly manifest: Uint8Array;
  readonly mediaType: string;
}

type Requests = Record<string, number>;

const gzipAsync = promisify(gzip);
const digestOf = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function expectStatus(response: Response, status: number, what: string): Promise<void> {
  if (response.status === status) {
    await response.body?.cancel();
    return;
  }
  throw new Error(`${what}: HTTP ${response.status} ${await response.text()}`);
}

/** A blob pushed as anyone would push it: its digest, a POST for an upload, a PUT with the digest. */
async function rawBlob(endpoint: string, repository: string, bytes: Uint8Array): Promise<void> {
  const digest = digestOf(bytes);
  const start = await fetch(`${endpoint}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  const location = new URL(start.headers.get("location") ?? "", endpoint);
  await expectStatus(start, 202, `starting an upload to ${repository}`);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: bytes,
  });
  await expectStatus(put, 201, `uploading ${digest} to ${repository}`);
}

/** The raw side's push: the flow layer, the config, then the manifest under `tag`. */
async function rawPush(endpoint: string, tag: string, image: PushedImage): Promise<void> {
  await rawBlob(endpoint, RAW_REPOSITORY, image.layer);
  await rawBlob(endpoint, RAW_REPOSITORY, image.config);
  const put = await fetch(`${endpoint}/v2/${RAW_REPOSITORY}/manifests/${tag}`, {
    method: "PUT",
    headers: { "Content-Type": image.mediaType },
    body: image.manifest,
  });
  await expectStatus(put, 201, `putting ${RAW_REPOSITORY}:${tag}`);
}

/** The image DockerStorage pushed at `location` (`host/repository@digest`), read back. */
async function readImage(endpoint: string, location: string): Promise<PushedImage> {
  const digest = location.slice(location.lastIndexOf("@") + 1);
  const get = async (path: string, accept?: string) => {
    const response = await fetch(`${endpoint}/v2/${TERN_REPOSITORY}/${path}`, {
      headers: accept === undefined ? {} : { Accept: accept },
    });
    if (response.status !== 200) throw new Error(`reading ${path}: HTTP ${response.status} ${await response.text()}`);
    return { bytes: new Uint8Array(await response.arrayBuffer()), type: response.headers.get("content-type") ?? "" };
  };
  const manifest = await get(`manifests/${digest}`, OCI_MANIFEST);
  const parsed = JSON.parse(new TextDecoder().decode(manifest.bytes)) as {
    config: { digest: string };
    layers: Array<{ digest: string }>;
  };
  const last = parsed.layers.at(-1);
  if (last === undefined) throw new Error(`${location} has no layers`);
  return {
    layer: (await get(`blobs/${last.digest}`)).bytes,
    config: (await get(`blobs/${parsed.config.digest}`)).bytes,
    manifest: manifest.bytes,
    mediaType: manifest.type,
  };
}

/** The planned flow with `bundle` as its bundle: what `plan` gives for a flow whose bundle is these bytes. */
function withBundle(template: PlannedFlow, bundle: Uint8Array): PlannedFlow {
  const manifest = template.manifest;
  return {
    name: template.name,
    bytes: bundle,
    manifest: { ...manifest, bundle: { ...manifest.bundle, sha256: sha256Hex(bundle), sizeBytes: bundle.byteLength } },
  };
}

/** What registration does with a planned flow in DockerStorage: keep its bundle, then build and push its image. */
async function register(storage: DockerStorage, planned: PlannedFlow) {
  await storage.upload([planned]);
  return storage.writeManifest(planned.manifest);
}

export async function dockerCases(sizesMb: readonly number[], repeats: number): Promise<void> {
  const registry = await startRegistry();
  const seen: Array<{ method: string; url: string }> = [];
  const proxy = await startProxy(registry.endpoint, (req) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "" });
    return "forward";
  });
  const proxyHost = new URL(proxy.endpoint).host;
  const home = await mkdtemp(join(tmpdir(), "tern-bench-docker-"));
  const previousHome = process.env.TERN_HOME;
  // plan() imports the bundle it makes into the home's cache.
  process.env.TERN_HOME = home;
  try {
    await pushBaseImage(registry.endpoint, BASE_REPOSITORY, { tag: "22" });
    // The raw side's repository holds the base's layers, as tern's does after its first push.
    const base = JSON.parse(
      new TextDecoder().decode(
        await (
          await fetch(`${registry.endpoint}/v2/${BASE_REPOSITORY}/manifests/22-amd64`, {
            headers: { Accept: OCI_MANIFEST },
          })
        ).arrayBuffer(),
      ),
    ) as { layers: Array<{ digest: string }> };
    for (const { digest } of base.layers) {
      const query = new URLSearchParams({ mount: digest, from: BASE_REPOSITORY });
      const mounted = await fetch(`${registry.endpoint}/v2/${RAW_REPOSITORY}/blobs/uploads/?${query}`, {
        method: "POST",
      });
      await expectStatus(mounted, 201, `mounting ${digest} into ${RAW_REPOSITORY}`);
    }

    const storageAt = (host: string) =>
      new DockerStorage({ registry: host, repository: TERN_REPOSITORY, baseImage: `${host}/${BASE_REPOSITORY}:22` });
    // A new storage for each registration, as a `tern register` process has (one keeps every
    // bundle it was given for its life).
    const storage = () => storageAt(registry.host);
    // The same repository through the recording proxy, for the counts.
    const counted = () => storageAt(proxyHost);
    const fixture = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "one-task.ts");
    const { flow } = (await import(pathToFileURL(fixture).href)) as { flow: Flow };
    const planner = storage();
    planner.add(flow);
    const [template] = await planner.plan({ only: [flow.name] });
    if (template === undefined) throw new Error(`planning ${fixture} gave no flow`);

    const byMethod = async (fn: () => Promise<unknown>): Promise<{ requests: Requests; blobsUploaded: number }> => {
      seen.length = 0;
      await fn();
      const requests: Requests = {};
      for (const { method } of seen) requests[method] = (requests[method] ?? 0) + 1;
      const blobsUploaded = seen.filter((r) => r.method === "PUT" && r.url.includes("/blobs/uploads/")).length;
      return { requests, blobsUploaded };
    };

    let pushes = 0;
    for (const sizeMb of sizesMb) {
      const bundle = () => new Uint8Array(randomBytes(sizeMb * 1024 * 1024));
      const ternMs: number[] = [];
      const rawMs: number[] = [];
      const gzipMs: number[] = [];
      let peakRss = 0;
      let peakArrayBuffers = 0;
      let last = withBundle(template, bundle());
      // A warm-up pair, then the timed repeats: tern pushes a new bundle, the raw side the same image.
      for (let r = -1; r < repeats; r++) {
        const planned = withBundle(template, bundle());
        const ternRun = await measured(() => register(storage(), planned));
        const image = await readImage(registry.endpoint, ternRun.value.location);
        const rawRun = await measured(() => rawPush(registry.endpoint, `raw-${++pushes}`, image));
        // What gzipping the layer's tar costs by itself, as DockerStorage does it for bytes that
        // do not compress (these random ones): gzip's stored blocks, level 0.
        const tar = gunzipSync(image.layer);
        const gzipRun = await measured(() => gzipAsync(tar, { level: 0 }));
        if (ternRun.value.bytesUploaded < planned.bytes.byteLength) {
          throw new Error(`DockerStorage sent ${ternRun.value.bytesUploaded} bytes for a new ${sizeMb} MB bundle`);
        }
        last = planned;
        if (r < 0) continue;
        ternMs.push(ternRun.ms);
        rawMs.push(rawRun.ms);
        gzipMs.push(gzipRun.ms);
        peakRss = Math.max(peakRss, ternRun.peakRss);
        peakArrayBuffers = Math.max(peakArrayBuffers, ternRun.peakArrayBuffers);
      }
      // One more push of each side through the proxy, counted.
      const planned = withBundle(template, bundle());
      let location = "";
      const ternCount = await byMethod(async () => {
        location = (await register(counted(), planned)).location;
      });
      const image = await readImage(registry.endpoint, location);
      const rawCount = await byMethod(() => rawPush(proxy.endpoint, `raw-${++pushes}`, image));
      const tern = median(ternMs);
      const raw = median(rawMs);
      console.log(
        JSON.stringify({
          name: "storage",
          server: DOCKER_SERVER,
          case: "push",
          size_mb: sizeMb,
          tern_ms: round(tern),
          raw_ms: round(raw),
          ratio: round(tern / raw),
          gzip_ms: round(median(gzipMs)),
          requests: ternCount.requests,
          raw_requests: rawCount.requests,
          peak_rss_mb: round(peakRss / 2 ** 20),
          peak_array_buffers_mb: round(peakArrayBuffers / 2 ** 20),
          repeats,
          goal_met: tern / raw <= GOAL_RATIO,
        }),
      );

      // The last timed bundle registered again, unchanged.
      const unchangedMs: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const run = await measured(() => register(storage(), last));
        if (run.value.bytesUploaded !== 0) throw new Error(`an unchanged flow sent ${run.value.bytesUploaded} bytes`);
        unchangedMs.push(run.ms);
      }
      let bytesUploaded = -1;
      const unchanged = await byMethod(async () => {
        bytesUploaded = (await register(counted(), last)).bytesUploaded;
      });
      const onlyReads = Object.keys(unchanged.requests).every((m) => m === "GET" || m === "HEAD");
      console.log(
        JSON.stringify({
          name: "storage",
          server: DOCKER_SERVER,
          case: "unchanged",
          size_mb: sizeMb,
          tern_ms: round(median(unchangedMs)),
          blobs_uploaded: unchanged.blobsUploaded,
          bytes_uploaded: bytesUploaded,
          requests: unchanged.requests,
          repeats,
          goal_met: unchanged.blobsUploaded === 0 && bytesUploaded === 0 && onlyReads,
        }),
      );
    }
  } finally {
    if (previousHome === undefined) delete process.env.TERN_HOME;
    else process.env.TERN_HOME = previousHome;
    await proxy.close();
    await registry.stop();
    await rm(home, { recursive: true, force: true });
  }
}
