/**
 * The registry client against the real Distribution server (Debian's docker-registry), with images
 * made here: gzip layers, an OCI config, manifests and a two-platform index.
 */
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { isTernError } from "@tern/core";
import { freePort } from "@tern/test-support/ports";
import { type Registry, startRegistry } from "@tern/test-support/registry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  type ImageManifest,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
  RegistryClient,
  RegistryError,
  sha256Digest,
} from "../../src/index.js";

const text = (value: string) => new TextEncoder().encode(value);

/** Pushes a one-layer image for `architecture` to `repository`; resolves its manifest and layer bytes. */
async function pushImage(client: RegistryClient, repository: string, architecture: string, tag?: string) {
  const layer = gzipSync(text(`a layer for ${architecture}\n`));
  const config = text(
    JSON.stringify({
      architecture,
      os: "linux",
      config: { Env: ["PATH=/usr/bin"], Entrypoint: ["node"] },
      rootfs: { type: "layers", diff_ids: [sha256Digest(text(`a layer for ${architecture}\n`))] },
    }),
  );
  const pushedLayer = await client.pushBlob(repository, layer);
  const pushedConfig = await client.pushBlob(repository, config);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    config: { mediaType: OCI_CONFIG, digest: pushedConfig.digest, size: pushedConfig.sizeBytes },
    layers: [{ mediaType: OCI_LAYER_GZIP, digest: pushedLayer.digest, size: pushedLayer.sizeBytes }],
  };
  const descriptor = await client.putManifest(repository, tag ?? architecture, manifest, OCI_MANIFEST);
  return { descriptor, layer, config, manifest, pushedLayer };
}

describe("RegistryClient against docker-registry", () => {
  let registry: Registry;
  let client: RegistryClient;

  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ registry: registry.host });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it("pushes an image's layer, config and manifest, and reads them back by tag and by digest", async () => {
    await client.ping();
    const { descriptor, layer, config, manifest } = await pushImage(client, "tern/base", "amd64", "1.0");
    expect(await client.statManifest("tern/base", "1.0")).toBe(descriptor.digest);
    const byTag = await client.getManifest("tern/base", "1.0");
    expect(byTag).toMatchObject({ kind: "manifest", digest: descriptor.digest, mediaType: OCI_MANIFEST });
    expect(byTag.kind === "manifest" && byTag.manifest.layers).toEqual(manifest.layers);
    const byDigest = await client.getImageManifest("tern/base", descriptor.digest, {
      os: "linux",
      architecture: "amd64",
    });
    expect(byDigest.manifest.config.digest).toBe(sha256Digest(config));
    expect(Buffer.from(await client.readBlob("tern/base", manifest.layers[0]!.digest))).toEqual(layer);
    const chunks: Uint8Array[] = [];
    for await (const chunk of await client.openBlob("tern/base", manifest.config.digest)) chunks.push(chunk);
    expect(JSON.parse(Buffer.concat(chunks).toString())).toMatchObject({ architecture: "amd64", os: "linux" });
  });

  it("resolves a multi-platform index to linux/amd64 and linux/arm64, and rejects a platform it lacks", async () => {
    const amd64 = await pushImage(client, "tern/multi", "amd64");
    const arm64 = await pushImage(client, "tern/multi", "arm64");
    await client.putManifest(
      "tern/multi",
      "latest",
      {
        schemaVersion: 2,
        manifests: [
          { ...amd64.descriptor, platform: { os: "linux", architecture: "amd64" } },
          { ...arm64.descriptor, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
        ],
      },
      OCI_INDEX,
    );
    const index = await client.getManifest("tern/multi", "latest");
    expect(index).toMatchObject({ kind: "index", mediaType: OCI_INDEX });
    const forAmd64 = await client.getImageManifest("tern/multi", "latest", { os: "linux", architecture: "amd64" });
    expect(forAmd64.digest).toBe(amd64.descriptor.digest);
    const forArm64 = await client.getImageManifest("tern/multi", "latest", { os: "linux", architecture: "arm64" });
    expect(forArm64.digest).toBe(arm64.descriptor.digest);
    await expect(
      client.getImageManifest("tern/multi", "latest", { os: "linux", architecture: "riscv64" }),
    ).rejects.toThrow(
      `Registry ${registry.host}, repository "tern/multi": image latest has no image for platform linux/riscv64; it has linux/amd64, linux/arm64/v8.`,
    );
  });

  it("stores and serves Docker v2 manifests and manifest lists with their media types", async () => {
    const image = await pushImage(client, "tern/docker", "amd64");
    const docker = await client.putManifest("tern/docker", "v2", image.manifest, DOCKER_MANIFEST);
    await client.putManifest(
      "tern/docker",
      "list",
      { schemaVersion: 2, manifests: [{ ...docker, platform: { os: "linux", architecture: "amd64" } }] },
      DOCKER_MANIFEST_LIST,
    );
    expect(await client.getManifest("tern/docker", "v2")).toMatchObject({
      kind: "manifest",
      mediaType: DOCKER_MANIFEST,
    });
    const resolved = await client.getImageManifest("tern/docker", "list", { os: "linux", architecture: "amd64" });
    expect(resolved).toMatchObject({ digest: docker.digest, mediaType: DOCKER_MANIFEST });
  });

  it("skips the upload of a blob the repository already holds", async () => {
    const content = text("pushed once");
    expect((await client.pushBlob("tern/again", content)).outcome).toBe("uploaded");
    expect(await client.pushBlob("tern/again", content)).toEqual({
      digest: sha256Digest(content),
      sizeBytes: content.byteLength,
      outcome: "exists",
    });
    expect(await client.statBlob("tern/again", sha256Digest(content))).toEqual({
      digest: sha256Digest(content),
      sizeBytes: content.byteLength,
    });
  });

  it("mounts a blob from another repository instead of uploading it, and uploads when no repository has it", async () => {
    const content = text("a base layer, shared");
    await client.pushBlob("tern/source", content);
    expect(await client.statBlob("tern/target", sha256Digest(content))).toBeUndefined();
    expect((await client.pushBlob("tern/target", content, { mountFrom: ["tern/source"] })).outcome).toBe("mounted");
    expect(await client.statBlob("tern/target", sha256Digest(content))).toBeDefined();
    const fresh = text("in no repository yet");
    expect((await client.pushBlob("tern/target", fresh, { mountFrom: ["tern/source"] })).outcome).toBe("uploaded");
    expect(Buffer.from(await client.readBlob("tern/target", sha256Digest(fresh))).toString()).toBe(
      "in no repository yet",
    );
  });

  it("uploads a blob larger than the chunk size in PATCHes", async () => {
    const chunked = new RegistryClient({ registry: registry.host, chunkBytes: 1000 });
    const content = new Uint8Array(2500).map((_, i) => i % 251);
    expect(await chunked.uploadBlob("tern/chunked", content)).toEqual({
      digest: sha256Digest(content),
      sizeBytes: 2500,
    });
    expect(Buffer.from(await client.readBlob("tern/chunked", sha256Digest(content)))).toEqual(Buffer.from(content));
  });

  it("streams a blob from one repository's read into another's upload, in PATCHes of the chunk size", async () => {
    const chunked = new RegistryClient({ registry: registry.host, chunkBytes: 1000 });
    const content = new Uint8Array(3500).map((_, i) => (i * 7) % 253);
    const { digest } = await client.uploadBlob("tern/stream-from", content);
    expect(
      await chunked.uploadBlobStream("tern/stream-to", digest, await client.openBlob("tern/stream-from", digest)),
    ).toEqual({
      digest,
      sizeBytes: 3500,
    });
    expect(Buffer.from(await client.readBlob("tern/stream-to", digest))).toEqual(Buffer.from(content));
  });

  it("cancels a streamed upload whose source fails its digest check, leaving no blob", async () => {
    const content = text("bytes to be copied");
    const { digest } = await client.uploadBlob("tern/stream-bad", content);
    const hex = digest.slice("sha256:".length);
    await writeFile(
      join(registry.root, "data/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data"),
      text("bytes TO BE changed"),
    );
    const chunked = new RegistryClient({ registry: registry.host, chunkBytes: 4 });
    const error = await chunked
      .uploadBlobStream("tern/stream-bad-to", digest, await client.openBlob("tern/stream-bad", digest))
      .catch((caught: unknown) => caught);
    expect(isTernError(error, "STORAGE_INTEGRITY"), String(error)).toBe(true);
    expect(await client.statBlob("tern/stream-bad-to", digest)).toBeUndefined();
  });

  it("fails naming the repository and tag when the manifest or repository does not exist", async () => {
    const missing = await client.getManifest("tern/nothing-here", "1.0").catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(RegistryError);
    expect((missing as RegistryError).message).toBe(
      `Registry ${registry.host}, repository "tern/nothing-here": cannot get manifest 1.0 (404 MANIFEST_UNKNOWN: manifest unknown): no such manifest: check the tag or digest, and that the image was pushed to this repository.`,
    );
    expect(missing).toMatchObject({ status: 404, registryCode: "MANIFEST_UNKNOWN", repository: "tern/nothing-here" });
    expect(await client.statManifest("tern/nothing-here", "1.0")).toBeUndefined();
    await expect(client.readBlob("tern/nothing-here", sha256Digest(text("none")))).rejects.toThrow(
      /cannot get blob sha256:[a-f0-9]{64} \(404 BLOB_UNKNOWN/,
    );
  });

  it("fails with an integrity error when the registry serves a blob whose bytes do not have its digest", async () => {
    const content = text("the bytes pushed");
    const { digest } = await client.uploadBlob("tern/tampered", content);
    // The registry's own file for the blob, changed behind its back (same length).
    const hex = digest.slice("sha256:".length);
    const file = join(registry.root, "data/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    await writeFile(file, text("the bytes CHANGED"));
    const error = await client.readBlob("tern/tampered", digest).catch((caught: unknown) => caught);
    expect(isTernError(error, "STORAGE_INTEGRITY")).toBe(true);
    expect((error as Error).message).toContain(
      `Registry ${registry.host}, repository "tern/tampered": cannot get blob ${digest}: the 17 bytes received have digest ${sha256Digest(text("the bytes CHANGED"))}.`,
    );
  });

  it("rejects a manifest whose blobs the repository lacks", async () => {
    const absent = { mediaType: OCI_LAYER_GZIP, digest: sha256Digest(text("never pushed")), size: 12 };
    await expect(
      client.putManifest("tern/broken", "1", { schemaVersion: 2, config: absent, layers: [] }, OCI_MANIFEST),
    ).rejects.toThrow(/cannot push manifest 1 \(400 MANIFEST_BLOB_UNKNOWN/);
  });

  it("fails as unavailable (retryable) when nothing listens at the registry's address", async () => {
    // A port freed a moment ago (fetch itself refuses the well-known ports, such as 9, before connecting).
    const port = await freePort();
    const gone = new RegistryClient({ registry: `127.0.0.1:${port}` });
    const error = await gone.ping().catch((caught: unknown) => caught);
    expect(isTernError(error, "STORAGE_UNAVAILABLE")).toBe(true);
    expect((error as RegistryError).retryable).toBe(true);
    expect((error as Error).message).toContain(
      `Registry 127.0.0.1:${port}: cannot reach the v2 API: the registry cannot be reached (ECONNREFUSED)`,
    );
  });
});

describe("RegistryClient with basic auth", () => {
  const credentials = { username: "ci", password: "s3cret-pass" };
  let registry: Registry;

  beforeAll(async () => {
    registry = await startRegistry({ basicAuth: credentials });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it("pushes and reads with the right credentials", async () => {
    const client = new RegistryClient({ registry: registry.host, auth: credentials });
    await client.ping();
    const { descriptor } = await pushImage(client, "tern/private", "amd64", "1");
    expect(await client.statManifest("tern/private", "1")).toBe(descriptor.digest);
  });

  it("fails with a 401 that asks for credentials when none are given", async () => {
    const error = await new RegistryClient({ registry: registry.host }).ping().catch((caught: unknown) => caught);
    expect(isTernError(error, "STORAGE_CREDENTIALS")).toBe(true);
    expect((error as Error).message).toMatch(/^Registry 127\.0\.0\.1:\d+: cannot reach the v2 API \(401 UNAUTHORIZED/);
    expect((error as Error).message).toContain("the registry asks for credentials");
  });

  it("fails with a 401 naming the user, never the password, when the password is wrong", async () => {
    const client = new RegistryClient({ registry: registry.host, auth: { username: "ci", password: "wrong-one" } });
    const error = await client.statManifest("tern/private", "1").catch((caught: unknown) => caught);
    expect(isTernError(error, "STORAGE_CREDENTIALS")).toBe(true);
    expect((error as Error).message).toContain('the registry refused the credentials of user "ci"');
    expect((error as Error).message).not.toContain("wrong-one");
  });
});

/**
 * The token flow in front of the real registry: a Bearer challenge naming a token service that
 * hands out a token for basic credentials (or an anonymous one for pulls), as Docker Hub, GHCR and
 * ECR-like registries do. Requests with a valid token are passed to the registry.
 */
describe("RegistryClient with the bearer token flow", () => {
  let registry: Registry;
  let front: Server;
  let host: string;
  const scopesAsked: string[] = [];

  beforeAll(async () => {
    registry = await startRegistry();
    front = createServer(async (request, response) => {
      const url = new URL(request.url ?? "/", "http://front");
      if (url.pathname === "/token") {
        const scopes = url.searchParams.getAll("scope");
        scopesAsked.push(scopes.join(" "));
        const basic = `Basic ${Buffer.from("ci:token-pass").toString("base64")}`;
        const push = scopes.some((scope) => scope.endsWith("push"));
        if (request.headers.authorization !== basic && (push || request.headers.authorization !== undefined)) {
          response.writeHead(401, { "Content-Type": "application/json" });
          response.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] }));
          return;
        }
        response.writeHead(200, { "Content-Type": "application/json" });
        response.end(JSON.stringify({ token: push ? "push-token" : "pull-token", expires_in: 300 }));
        return;
      }
      const authorization = request.headers.authorization;
      const write = request.method !== "GET" && request.method !== "HEAD";
      if (authorization !== "Bearer push-token" && (write || authorization !== "Bearer pull-token")) {
        response.writeHead(401, {
          "WWW-Authenticate": `Bearer realm="http://${host}/token",service="tern-test"`,
          "Content-Type": "application/json",
        });
        response.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
        return;
      }
      const body: Buffer[] = [];
      for await (const chunk of request) body.push(chunk as Buffer);
      const upstream = await fetch(`${registry.endpoint}${request.url}`, {
        method: request.method,
        headers: Object.fromEntries(
          Object.entries(request.headers).filter(
            (entry): entry is [string, string] => typeof entry[1] === "string" && entry[0] !== "host",
          ),
        ),
        body: body.length === 0 ? undefined : Buffer.concat(body),
      });
      const headers = Object.fromEntries(upstream.headers);
      if (headers.location !== undefined)
        headers.location = headers.location.replace(registry.endpoint, `http://${host}`);
      response.writeHead(upstream.status, headers);
      response.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
    host = `127.0.0.1:${(front.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    front?.closeAllConnections();
    await new Promise<void>((resolve) => (front === undefined ? resolve() : front.close(() => resolve())));
    await registry?.stop();
  });

  it("gets a push token with basic credentials for the repository's scope, then pulls anonymously", async () => {
    const client = new RegistryClient({ registry: host, auth: { username: "ci", password: "token-pass" } });
    const { descriptor } = await pushImage(client, "tern/tokens", "amd64", "1");
    expect(scopesAsked).toContain("repository:tern/tokens:pull,push");
    const anonymous = new RegistryClient({ registry: host });
    expect((await anonymous.getManifest("tern/tokens", "1")).digest).toBe(descriptor.digest);
    expect(scopesAsked).toContain("repository:tern/tokens:pull");
  });

  it("fails with a 401 from the token service when an anonymous client pushes", async () => {
    const error = await new RegistryClient({ registry: host })
      .uploadBlob("tern/tokens", text("refused"))
      .catch((caught: unknown) => caught);
    expect(isTernError(error, "STORAGE_CREDENTIALS")).toBe(true);
    expect((error as Error).message).toContain(
      `cannot get a token from http://${host}/token (401 UNAUTHORIZED: bad credentials)`,
    );
  });
});
