/**
 * A flow stored in a container image, end to end through the CLI, against a real registry
 * (Debian's docker-registry) behind a proxy that records every request: the image is built on a
 * base the test pushed (a two-platform index), its base layers are mounted, never sent; an
 * unchanged flow sends nothing; the local agent runs it from the registry's flow layer; bad input
 * is refused naming the value, with nothing recorded.
 */
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { gunzipSync } from "node:zlib";
import { type ForwardingProxy, startProxy } from "@tern/test-support/fault-proxy";
import { freePort } from "@tern/test-support/ports";
import { type Registry, startRegistry } from "@tern/test-support/registry";
import { type BaseImage, pushBaseImage } from "@tern/test-support/registry-images";
import { extract } from "tar-stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type TernHome, ternHome } from "./support/cli.js";

const FLOW = "test/fixtures/docker-flow.ts";
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

interface RunJson {
  state: string;
  reason?: string;
  outputs: Record<string, unknown>;
}

/** The files of a gzipped layer, by path. */
async function layerFiles(gzipped: Uint8Array): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const tar = extract();
  const reading = (async () => {
    for await (const entry of tar) {
      if (entry.header.type === "file") files.set(`/${entry.header.name}`, await buffer(entry));
      else entry.resume();
    }
  })();
  tar.end(gunzipSync(gzipped));
  await reading;
  return files;
}

/** The symbolic links of a gzipped layer: path → target. */
async function symlinks(gzipped: Uint8Array): Promise<Record<string, string>> {
  const links: Record<string, string> = {};
  const tar = extract();
  const reading = (async () => {
    for await (const entry of tar) {
      if (entry.header.type === "symlink") links[`/${entry.header.name}`] = entry.header.linkname ?? "";
      entry.resume();
    }
  })();
  tar.end(gunzipSync(gzipped));
  await reading;
  return links;
}

describe("a flow stored in a container image (DockerStorage)", { timeout: 180_000 }, () => {
  let registry: Registry;
  let proxy: ForwardingProxy;
  let host = "";
  let base: BaseImage;
  let t: TernHome;
  const requests: Array<{ method: string; url: string }> = [];
  const env = (extra: Record<string, string> = {}) => ({
    TERN_TEST_REGISTRY: host,
    TERN_TEST_BASE_IMAGE: base.reference,
    ...extra,
  });
  const get = async (path: string, accept?: string) => {
    const response = await fetch(
      `${registry.endpoint}${path}`,
      accept === undefined ? {} : { headers: { Accept: accept } },
    );
    expect(response.status, path).toBe(200);
    return new Uint8Array(await response.arrayBuffer());
  };
  const image = async (location: string) => {
    const [name, digest] = location.slice(host.length + 1).split("@") as [string, string];
    const manifest = JSON.parse(
      new TextDecoder().decode(
        await get(`/v2/${name}/manifests/${digest}`, "application/vnd.oci.image.manifest.v1+json"),
      ),
    ) as { config: { digest: string }; layers: Array<{ digest: string }> };
    const config = JSON.parse(new TextDecoder().decode(await get(`/v2/${name}/blobs/${manifest.config.digest}`)));
    const layers = await Promise.all(manifest.layers.map((l) => get(`/v2/${name}/blobs/${l.digest}`)));
    return { manifest, config, layers };
  };

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startProxy(registry.endpoint, (req: IncomingMessage) => {
      requests.push({ method: req.method ?? "", url: req.url ?? "" });
      return "forward";
    });
    host = new URL(proxy.endpoint).host;
    base = await pushBaseImage(proxy.endpoint, "base/node", { tag: "22" });
    t = await ternHome();
  }, 60_000);
  afterAll(async () => {
    await t?.cleanup();
    await proxy?.close();
    await registry?.stop();
  });
  beforeEach(() => {
    requests.length = 0;
  });

  it("builds the image on the base with no daemon, mounting the base's layers, and keeps the base's config", async () => {
    const registered = await t.tern(["register", FLOW, "--json"], env());
    expect(registered.code, registered.stderr).toBe(0);
    const [result] = JSON.parse(registered.stdout) as Array<{ status: string; location: string; hash: string }>;
    expect(result?.status).toBe("new");
    expect(result?.location).toMatch(new RegExp(`^${host}/team/flows@sha256:[0-9a-f]{64}$`));

    // The base's two amd64 layers were mounted from base/node, never uploaded.
    const amd64 = base.layers["linux/amd64"] as string[];
    const mounts = requests.filter((r) => r.method === "POST" && r.url.includes("mount="));
    expect(mounts.map((r) => new URL(r.url, "http://x").searchParams.get("mount")).sort()).toEqual([...amd64].sort());
    const uploads = requests.filter((r) => r.method === "PUT" && r.url.includes("digest="));
    for (const digest of amd64) expect(uploads.some((r) => r.url.includes(encodeURIComponent(digest)))).toBe(false);

    const { manifest, config, layers } = await image(result?.location as string);
    expect(manifest.layers.slice(0, 2).map((l) => l.digest)).toEqual(amd64);
    expect(config.architecture).toBe("amd64");
    expect(config.config.Entrypoint).toEqual(base.entrypoint);
    expect(config.config.User).toBe("node");
    expect(config.config.Env).toEqual([...base.env, "GREETING=hello from the image"]);
    expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
    // The files given, and the flow's layer: the bundle whose sha256 the manifest records.
    const files = await layerFiles(layers[2] as Uint8Array);
    expect(files.get("/opt/data/model.txt")?.toString()).toBe("model weights\n");
    const flowLayer = await layerFiles(layers.at(-1) as Uint8Array);
    const stored = flowLayer.get("/tern/flow/manifest.json") as Buffer;
    expect(sha256(stored)).toBe(result?.hash);
    const bundle = flowLayer.get("/tern/flow/bundle.mjs") as Buffer;
    expect(sha256(bundle)).toBe(JSON.parse(stored.toString()).bundle.sha256);
    // The storage's SDK is imported on first I/O, which never happens in a bundle: it stays out.
    expect(bundle.toString()).toMatch(/import\(\s*"@aws-sdk\/client-ecr"\s*\)/);
    expect(bundle.toString()).not.toContain("class ECRClient");
    expect(config.config.Labels["dev.tern.manifest-sha256"]).toBe(result?.hash);
  });

  it("registers an unchanged flow as unchanged, sending nothing", async () => {
    const again = await t.json<Array<{ status: string; bytesUploaded: number }>>(["register", FLOW], env());
    expect(again[0]).toMatchObject({ status: "unchanged", bytesUploaded: 0 });
    expect(requests.filter((r) => !["GET", "HEAD"].includes(r.method))).toEqual([]);
  });

  it("runs through the local agent to Success, reading the flow's layer from the registry", async () => {
    const { id } = await t.json<{ id: string }>(["run", "docker-etl"], env());
    await rm(join(t.home, "cache"), { recursive: true, force: true });
    const agent = await t.tern(["agent", "--once"], env());
    expect(agent.code, agent.stderr).toBe(0);
    const run = await t.json<RunJson>(["runs", "show", id], env());
    expect(run.state, run.reason).toBe("Success");
    expect(run.outputs.total).toEqual({ kind: "json", value: 6 });
  });

  it("builds for linux/arm64 from the base's arm64 image", async () => {
    const extra = { TERN_TEST_PLATFORM: "linux/arm64", TERN_TEST_DOCKER_FLOW: "docker-arm" };
    const [result] = await t.json<Array<{ location: string }>>(["register", FLOW], env(extra));
    const { manifest, config } = await image(result?.location as string);
    expect(config.architecture).toBe("arm64");
    expect(manifest.layers.slice(0, 2).map((l) => l.digest)).toEqual(base.layers["linux/arm64"]);
  });

  it("installs a native dependency's Linux build for the image's platform into a layer, and leaves it out of the bundle", async () => {
    const extra = {
      TERN_TEST_PLATFORM: "linux/arm64",
      TERN_TEST_DOCKER_FLOW: "docker-native",
      TERN_TEST_DOCKER_DEPS: "esbuild",
    };
    const registered = await t.tern(["register", FLOW, "--json"], env(extra));
    expect(registered.code, registered.stderr).toBe(0);
    const [result] = JSON.parse(registered.stdout) as Array<{ location: string }>;
    const { config, layers } = await image(result?.location as string);
    // Base (2), dependencies, files, flow.
    expect(layers).toHaveLength(5);
    const dependencies = await layerFiles(layers[2] as Uint8Array);
    const binary = dependencies.get("/tern/node_modules/@esbuild/linux-arm64/bin/esbuild") as Buffer;
    // An ELF for AArch64 (e_machine 183), not this machine's build.
    expect(binary.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(binary.readUInt16LE(18)).toBe(183);
    expect([...dependencies.keys()].some((path) => path.includes("@esbuild/linux-x64"))).toBe(false);
    expect(config.history.at(-3).created_by).toMatch(/^tern: dependencies esbuild@\d+\.\d+\.\d+$/);
    // The flow's layer links /node_modules to them: the bundle, imported from anywhere, resolves them.
    const flowLayer = layers.at(-1) as Uint8Array;
    expect(await symlinks(flowLayer)).toEqual({ "/node_modules": "tern/node_modules" });
  });

  it("copies a base from another registry into the repository once, streamed, and finds it there afterwards", async () => {
    const other = await startRegistry();
    try {
      const elsewhere = await pushBaseImage(other.endpoint, "library/node", { tag: "22", marker: "elsewhere" });
      const extra = (flow: string) => ({ TERN_TEST_BASE_IMAGE: elsewhere.reference, TERN_TEST_DOCKER_FLOW: flow });
      const [first] = await t.json<Array<{ location: string }>>(["register", FLOW], env(extra("docker-copied-1")));
      const amd64 = elsewhere.layers["linux/amd64"] as string[];
      const uploaded = requests.filter(
        (r) => r.method === "PUT" && amd64.some((d) => r.url.includes(encodeURIComponent(d))),
      );
      expect(uploaded).toHaveLength(2);
      expect((await image(first?.location as string)).manifest.layers.slice(0, 2).map((l) => l.digest)).toEqual(amd64);
      requests.length = 0;
      await t.json(["register", FLOW], env(extra("docker-copied-2")));
      expect(
        requests.filter((r) => r.method === "PUT" && amd64.some((d) => r.url.includes(encodeURIComponent(d)))),
      ).toEqual([]);
    } finally {
      await other.stop();
    }
  });

  describe("refuses bad input naming it, and records nothing", () => {
    const refused = async (extra: Record<string, string>, message: RegExp) => {
      const flow = `docker-bad-${Math.random().toString(36).slice(2, 8)}`;
      const result = await t.tern(["register", FLOW], env({ TERN_TEST_DOCKER_FLOW: flow, ...extra }));
      expect(result.code, result.stderr).not.toBe(0);
      expect(result.stderr).toMatch(message);
      const flows = await t.json<Array<{ name: string }>>(["flows"], env());
      expect(flows.map((f) => f.name)).not.toContain(flow);
    };

    it("a base image that does not exist", async () => {
      await refused(
        { TERN_TEST_BASE_IMAGE: `${host}/base/nothing:1` },
        new RegExp(`base image ${host}/base/nothing:1 does not exist`),
      );
    });

    it("a platform the base lacks", async () => {
      const amd64Only = await pushBaseImage(proxy.endpoint, "base/amd64-only", { platforms: ["linux/amd64"] });
      await refused(
        { TERN_TEST_BASE_IMAGE: amd64Only.reference, TERN_TEST_PLATFORM: "linux/arm64" },
        /is for linux\/amd64, not linux\/arm64/,
      );
    });

    it("a registry that does not answer", async () => {
      const closed = `127.0.0.1:${await freePort()}`;
      await refused({ TERN_TEST_REGISTRY: closed, TERN_TEST_BASE_IMAGE: `${closed}/base/node:22` }, new RegExp(closed));
    });

    it("a registry that wants credentials (401)", async () => {
      const locked = await startRegistry({ basicAuth: { username: "ci", password: "s3cret-pw" } });
      try {
        const lockedHost = new URL(locked.endpoint).host;
        await refused(
          { TERN_TEST_REGISTRY: lockedHost, TERN_TEST_BASE_IMAGE: `${lockedHost}/base/node:22` },
          new RegExp(`${lockedHost}.*(401|credentials)`, "s"),
        );
      } finally {
        await locked.stop();
      }
    });
  });
});
