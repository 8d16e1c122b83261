import { describe, expect, it } from "vitest";
import { OCI_INDEX, OCI_MANIFEST, parsePlatform, registryBaseUrl, selectPlatform } from "../../src/index.js";
import { parseChallenge } from "../../src/registry/challenge.js";

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const context = { registry: "registry.example", repository: "library/node" };

describe("registryBaseUrl", () => {
  it("reaches a registry over https, and a loopback one over plain HTTP", () => {
    expect(registryBaseUrl("ghcr.io").href).toBe("https://ghcr.io/");
    expect(registryBaseUrl("127.0.0.1:5000").href).toBe("http://127.0.0.1:5000/");
    expect(registryBaseUrl("localhost:5000").href).toBe("http://localhost:5000/");
    expect(registryBaseUrl("[::1]:5000").href).toBe("http://[::1]:5000/");
    expect(registryBaseUrl("https://localhost:5443").href).toBe("https://localhost:5443/");
  });

  it("rejects plain HTTP to another machine, and hosts with paths or credentials (never repeating them)", () => {
    expect(() => registryBaseUrl("http://registry.example")).toThrow(
      /plain HTTP is only for a registry on this machine/,
    );
    expect(() => registryBaseUrl("ghcr.io/acme")).toThrow(/not a registry host/);
    expect(() => registryBaseUrl("https://user:secret@ghcr.io")).toThrow(/not a registry host/);
    expect(() => registryBaseUrl("https://user:secret@ghcr.io")).not.toThrow(/secret/);
  });
});

describe("parseChallenge", () => {
  it("reads a Bearer challenge's realm, service and scope", () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
      ),
    ).toEqual({
      scheme: "bearer",
      params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull,push" },
    });
  });

  it("reads a Basic challenge, and nothing from a missing header", () => {
    expect(parseChallenge('Basic realm="tern-test"')).toEqual({ scheme: "basic", params: { realm: "tern-test" } });
    expect(parseChallenge(null)).toBeUndefined();
  });
});

describe("selectPlatform", () => {
  const index = {
    schemaVersion: 2 as const,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: OCI_MANIFEST, digest: digest(1), size: 1, platform: { os: "linux", architecture: "amd64" } },
      {
        mediaType: OCI_MANIFEST,
        digest: digest(2),
        size: 1,
        platform: { os: "linux", architecture: "arm64", variant: "v8" },
      },
      {
        mediaType: OCI_MANIFEST,
        digest: digest(3),
        size: 1,
        platform: { os: "linux", architecture: "arm", variant: "v7" },
      },
      { mediaType: OCI_MANIFEST, digest: digest(4), size: 1, platform: { os: "unknown", architecture: "unknown" } },
    ],
  };

  it("chooses by os and architecture, arm64 with or without its v8 variant, and arm by variant", () => {
    expect(selectPlatform(index, parsePlatform("linux/amd64"), context, "20").digest).toBe(digest(1));
    expect(selectPlatform(index, parsePlatform("linux/arm64"), context, "20").digest).toBe(digest(2));
    expect(selectPlatform(index, parsePlatform("linux/arm64/v8"), context, "20").digest).toBe(digest(2));
    expect(selectPlatform(index, parsePlatform("linux/arm/v7"), context, "20").digest).toBe(digest(3));
  });

  it("rejects a platform the index lacks, naming the ones it has (attestations left out)", () => {
    expect(() => selectPlatform(index, parsePlatform("linux/s390x"), context, "20")).toThrow(
      'Registry registry.example, repository "library/node": image 20 has no image for platform linux/s390x; it has linux/amd64, linux/arm64/v8, linux/arm/v7.',
    );
  });

  it("rejects a platform that is not os/architecture[/variant]", () => {
    expect(() => parsePlatform("amd64")).toThrow(/not os\/architecture\[\/variant\]/);
  });
});
