/**
 * DockerStorage's decisions that need no registry: image references, the flow image's config and
 * manifest from its base's, the options' checks, the storage's JSON and its locations.
 */
import { isTernError } from "@tern/core";
import { storageFromJSON } from "@tern/core/plugin";
import { describe, expect, it } from "vitest";
import { flowImageManifest, planFlowImage } from "../../src/image/config.js";
import { buildLayer } from "../../src/image/layer.js";
import { formatImageReference, parseImageReference } from "../../src/image/reference.js";
import {
  DOCKER_MANIFEST,
  DockerStorage,
  type DockerStorageOptions,
  OCI_MANIFEST,
  sha256Digest,
} from "../../src/index.js";

const text = (value: string) => new TextEncoder().encode(value);

describe("image references", () => {
  it.each([
    ["node:22", { registry: "registry-1.docker.io", repository: "library/node", reference: "22" }],
    ["node", { registry: "registry-1.docker.io", repository: "library/node", reference: "latest" }],
    ["docker.io/library/node:20", { registry: "registry-1.docker.io", repository: "library/node", reference: "20" }],
    ["acme/base:1", { registry: "registry-1.docker.io", repository: "acme/base", reference: "1" }],
    [
      "public.ecr.aws/docker/library/node:22-slim",
      { registry: "public.ecr.aws", repository: "docker/library/node", reference: "22-slim" },
    ],
    ["127.0.0.1:5000/base/node:22", { registry: "127.0.0.1:5000", repository: "base/node", reference: "22" }],
    ["localhost/base", { registry: "localhost", repository: "base", reference: "latest" }],
    [
      `ghcr.io/acme/base:1@sha256:${"a".repeat(64)}`,
      { registry: "ghcr.io", repository: "acme/base", reference: `sha256:${"a".repeat(64)}` },
    ],
  ])("%s", (text, expected) => {
    expect(parseImageReference(text, "baseImage")).toEqual(expected);
  });

  it("formats a digest with @ and a tag with :", () => {
    expect(formatImageReference({ registry: "r.io", repository: "a/b", reference: "1" })).toBe("r.io/a/b:1");
    const digest = `sha256:${"b".repeat(64)}`;
    expect(formatImageReference({ registry: "r.io", repository: "a/b", reference: digest })).toBe(`r.io/a/b@${digest}`);
  });

  it.each(["", "a b", "node@sha256:12", "r.io/:1"])("refuses %j naming it", (bad) => {
    expect(() => parseImageReference(bad, "baseImage")).toThrow(
      `baseImage ${JSON.stringify(bad)} is not an image reference`,
    );
  });
});

describe("the flow image's config and manifest", () => {
  const baseConfig = {
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/usr/bin", "NODE_ENV=development"], Entrypoint: ["docker-entrypoint.sh"], User: "node" },
    rootfs: { type: "layers", diff_ids: [sha256Digest(text("base"))] },
    history: [{ created_by: "base" }],
    unknownField: { kept: true },
  };
  const base = (mediaType = OCI_MANIFEST) => ({
    mediaType,
    configBytes: text(JSON.stringify(baseConfig)),
    manifest: {
      schemaVersion: 2 as const,
      config: { mediaType: "x", digest: sha256Digest(text("c")), size: 1 },
      layers: [{ mediaType: "x", digest: sha256Digest(text("l")), size: 1 }],
    },
  });
  const labels = { flow: "etl", manifestSha256: "m".repeat(64), bundleSha256: "b".repeat(64) };

  it("keeps the base's config, adds Env and labels, and appends layers to diff_ids and history", async () => {
    const layer = await buildLayer([{ kind: "file", path: "/tern/flow/bundle.mjs", content: text("x") }]);
    const plan = planFlowImage(
      base(),
      [{ diffId: layer.diffId, createdBy: "tern: flow" }],
      { NODE_ENV: "production", A: "1" },
      labels,
      "etl",
    );
    const config = JSON.parse(new TextDecoder().decode(plan.configBytes));
    expect(config.config.Env).toEqual(["PATH=/usr/bin", "A=1", "NODE_ENV=production"]);
    expect(config.config.Entrypoint).toEqual(["docker-entrypoint.sh"]);
    expect(config.config.User).toBe("node");
    expect(config.config.Labels).toEqual({
      "dev.tern.flow": "etl",
      "dev.tern.manifest-sha256": labels.manifestSha256,
      "dev.tern.bundle-sha256": labels.bundleSha256,
    });
    expect(config.unknownField).toEqual({ kept: true });
    expect(config.rootfs.diff_ids).toEqual([...baseConfig.rootfs.diff_ids, layer.diffId]);
    expect(config.history.map((h: { created_by: string }) => h.created_by)).toEqual(["base", "tern: flow"]);
    const manifest = flowImageManifest(plan, [layer]);
    expect(manifest.layers.map((l) => l.digest)).toEqual([sha256Digest(text("l")), layer.digest]);
    expect(manifest.config).toEqual({
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: plan.configDigest,
      size: plan.configBytes.byteLength,
    });
    expect(plan.configDigest).toBe(sha256Digest(plan.configBytes));
    expect(plan.tag).toMatch(/^etl-[0-9a-f]{32}$/);
    expect(plan.mediaType).toBe(OCI_MANIFEST);
  });

  it("derives the tag from the content: equal inputs, equal tags; another bundle, another tag", async () => {
    const layer = (content: string) =>
      buildLayer([{ kind: "file", path: "/tern/flow/bundle.mjs", content: text(content) }]);
    const plan = async (content: string) =>
      planFlowImage(base(), [{ diffId: (await layer(content)).diffId, createdBy: "tern: flow" }], {}, labels, "etl");
    expect((await plan("a")).tag).toBe((await plan("a")).tag);
    expect((await plan("a")).tag).not.toBe((await plan("b")).tag);
  });

  it("uses Docker's media types on a Docker v2 base", async () => {
    const layer = await buildLayer([{ kind: "directory", path: "/tern" }]);
    const plan = planFlowImage(base(DOCKER_MANIFEST), [{ diffId: layer.diffId, createdBy: "x" }], {}, labels, "etl");
    expect(plan.mediaType).toBe(DOCKER_MANIFEST);
    const manifest = flowImageManifest(plan, [layer]);
    expect(manifest.config.mediaType).toBe("application/vnd.docker.container.image.v1+json");
    expect(manifest.layers.at(-1)?.mediaType).toBe("application/vnd.docker.image.rootfs.diff.tar.gzip");
  });

  it("compresses what compresses, and stores what does not, the same bytes every time", async () => {
    const text64k = text("export const value = 1;\n".repeat(20_000));
    const random = new Uint8Array(300_000).map(() => Math.floor(Math.random() * 256));
    const js = await buildLayer([{ kind: "file", path: "/tern/flow/bundle.mjs", content: text64k }]);
    expect(js.sizeBytes).toBeLessThan(text64k.byteLength / 10);
    const noise = await buildLayer([{ kind: "file", path: "/tern/flow/bundle.mjs", content: random }]);
    expect(noise.sizeBytes).toBeGreaterThan(random.byteLength);
    const again = await buildLayer([{ kind: "file", path: "/tern/flow/bundle.mjs", content: random }]);
    expect(again.digest).toBe(noise.digest);
  });
});

describe("DockerStorage's options", () => {
  const good: DockerStorageOptions = { registry: "127.0.0.1:5000", repository: "team/flows" };
  const refused = (options: Record<string, unknown>, message: string | RegExp) => {
    try {
      new DockerStorage({ ...good, ...options } as unknown as DockerStorageOptions);
    } catch (error) {
      expect(isTernError(error, "STORAGE_OPTIONS"), String(error)).toBe(true);
      expect((error as Error).message).toMatch(message);
      return;
    }
    throw new Error(`accepted ${JSON.stringify(options)}`);
  };

  it.each<[Record<string, unknown>, string | RegExp]>([
    [{ registry: "https://ghcr.io" }, 'registry "https://ghcr.io" is not a registry host'],
    [{ repository: "Team/Flows" }, 'repository "Team/Flows" is not a repository name'],
    [{ baseImage: "node@sha256:1" }, /baseImage "node@sha256:1" is not an image reference/],
    [{ tag: "-x" }, 'tag "-x" is not a tag start'],
    [{ dependencies: ["sharp; rm -rf /"] }, /"sharp; rm -rf \/" is not an npm package/],
    [{ files: { "./data": "data" } }, 'files: "data" is not a path in the image'],
    [{ env: { DB_PASSWORD: "x" } }, "env: DB_PASSWORD looks like a secret"],
    [{ env: { TERN_HOME: "/x" } }, "env: TERN_HOME is tern's own"],
    [{ platform: "linux/386" }, /platform "linux\/386" is not one of linux\/amd64, linux\/arm64/],
    [{ registy: "x" }, 'unknown option "registy"'],
    [{ auth: { ecr: true } }, "auth.ecr needs a region"],
  ])("refuses %j", (options, message) => refused(options, message));

  it("records only where secrets are, and rebuilds itself from its JSON", () => {
    const storage = new DockerStorage({
      ...good,
      dependencies: ["sharp@0.33.5"],
      env: { GREETING: "hi" },
      platform: "linux/arm64",
      auth: { username: "ci", passwordEnv: "REGISTRY_PASSWORD" },
    });
    const json = storage.toJSON();
    expect(json.options).toMatchObject({
      external: ["sharp"],
      auth: { username: "ci", passwordEnv: "REGISTRY_PASSWORD" },
    });
    expect(storageFromJSON(json).toJSON()).toEqual(json);
  });

  it("answers its images by digest, and refuses a location of another repository", () => {
    const storage = new DockerStorage({ ...good, platform: "linux/arm64" });
    const location = `127.0.0.1:5000/team/flows@sha256:${"c".repeat(64)}`;
    expect(storage.containerImage(location)).toEqual({ reference: location, platform: "linux/arm64" });
    expect(() => storage.containerImage(`127.0.0.1:5000/other@sha256:${"c".repeat(64)}`)).toThrow(
      "is not an image of this repository",
    );
  });
});
