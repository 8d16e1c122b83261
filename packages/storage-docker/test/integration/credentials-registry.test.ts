/**
 * Credentials from `auth` against the real Distribution server (Debian's docker-registry) with an
 * htpasswd user: read from environment variables, and ECR-shaped (GetAuthorizationToken mocked to
 * answer a token whose password is the registry's for user "AWS").
 */
import { gzipSync } from "node:zlib";
import { ECRClient, type ECRClientResolvedConfig, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import { isTernError } from "@tern/core";
import { type Registry, startRegistry } from "@tern/test-support/registry";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CredentialCache, registryCredentials } from "../../src/credentials.js";
import { RegistryClient } from "../../src/registry/client.js";
import { type ImageManifest, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST } from "../../src/registry/media-types.js";
import { failure } from "../support/failure.js";

const text = (value: string) => new TextEncoder().encode(value);

/** Pushes a one-layer image to `repository:tag` and reads it back: its manifest's digest and its layer's bytes. */
async function pushAndRead(client: RegistryClient, repository: string, tag: string) {
  const layer = gzipSync(text(`a layer of ${repository}:${tag}\n`));
  const pushedLayer = await client.pushBlob(repository, layer);
  const pushedConfig = await client.pushBlob(
    repository,
    text(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } })),
  );
  const manifest: ImageManifest = {
    schemaVersion: 2,
    config: { mediaType: OCI_CONFIG, digest: pushedConfig.digest, size: pushedConfig.sizeBytes },
    layers: [{ mediaType: OCI_LAYER_GZIP, digest: pushedLayer.digest, size: pushedLayer.sizeBytes }],
  };
  const descriptor = await client.putManifest(repository, tag, manifest, OCI_MANIFEST);
  expect(await client.statManifest(repository, tag)).toBe(descriptor.digest);
  expect(Buffer.from(await client.readBlob(repository, pushedLayer.digest))).toEqual(layer);
}

describe("credentials from environment variables against docker-registry", () => {
  const PASSWORD = "env-pass-Q7w9";
  let registry: Registry;

  beforeAll(async () => {
    registry = await startRegistry({ basicAuth: { username: "ci", password: PASSWORD } });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it("lets a RegistryClient push and read with the user and password read from the environment", async () => {
    const env = { REGISTRY_USER: "ci", REGISTRY_PASSWORD: PASSWORD };
    const credentials = await registryCredentials(
      registry.host,
      { passwordEnv: "REGISTRY_PASSWORD", usernameEnv: "REGISTRY_USER" },
      env,
    );
    expect(credentials.auth).toEqual({ username: "ci", password: PASSWORD });
    await pushAndRead(new RegistryClient({ registry: registry.host, auth: credentials.auth }), "tern/env", "1");

    const cache = new CredentialCache(registry.host, { passwordEnv: "REGISTRY_PASSWORD", username: "ci" }, { env });
    const { auth } = await cache.get();
    await pushAndRead(new RegistryClient({ registry: registry.host, auth }), "tern/env", "2");
  });

  it("fails with a 401 naming the registry and the user, never the password, when the variable holds a wrong one", async () => {
    const wrong = "wrong-pass-Z3x5";
    const { auth } = await registryCredentials(
      registry.host,
      { passwordEnv: "REGISTRY_PASSWORD", username: "ci" },
      { REGISTRY_PASSWORD: wrong },
    );
    const error = await failure(new RegistryClient({ registry: registry.host, auth }).statManifest("tern/env", "1"));
    expect(isTernError(error, "STORAGE_CREDENTIALS")).toBe(true);
    expect(error.status).toBe(401);
    expect(error.registry).toBe(registry.host);
    expect(error.message).toContain(`Registry ${registry.host}, repository "tern/env"`);
    expect(error.message).toContain('the registry refused the credentials of user "ci"');
    expect(error.message).not.toContain(wrong);
    expect(error.message).not.toContain(PASSWORD);
  });

  it("asks for credentials when auth is absent, and names an unset variable before any request", async () => {
    const anonymous = await registryCredentials(registry.host, undefined, {});
    const refused = await failure(new RegistryClient({ registry: registry.host, auth: anonymous.auth }).ping());
    expect(refused.status).toBe(401);
    expect(refused.message).toContain("the registry asks for credentials");
    const unset = await failure(registryCredentials(registry.host, { tokenEnv: "REGISTRY_TOKEN" }, {}));
    expect(unset.message).toBe(
      `Registry ${registry.host}: auth.tokenEnv names REGISTRY_TOKEN, which is not set in this process's environment. Set it to a bearer token for ${registry.host}, or change auth.tokenEnv.`,
    );
  });
});

describe("ECR-shaped credentials against docker-registry", () => {
  const ecr = mockClient(ECRClient);
  const PASSWORD = `ecr-${"Tk9".repeat(30)}`;
  const token = (password: string) => Buffer.from(`AWS:${password}`).toString("base64");
  let registry: Registry;

  beforeAll(async () => {
    registry = await startRegistry({ basicAuth: { username: "AWS", password: PASSWORD } });
  });
  afterAll(async () => {
    ecr.restore();
    await registry?.stop();
  });
  beforeEach(() => {
    ecr.reset();
  });

  it("pushes and reads with the token ECR answers, asked in auth.ecr's region", async () => {
    ecr.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [{ authorizationToken: token(PASSWORD), expiresAt: new Date(Date.now() + 12 * 3_600_000) }],
    });
    const credentials = await registryCredentials(registry.host, { ecr: { region: "eu-west-1" } }, {});
    expect(credentials.auth).toEqual({ username: "AWS", password: PASSWORD });
    await pushAndRead(new RegistryClient({ registry: registry.host, auth: credentials.auth }), "tern/ecr", "1");
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
    // A registry host that is not ECR's names no account: the token is for the caller's own.
    expect(ecr.call(0).args[0].input).toEqual({});
    expect(await ((ecr.call(0).thisValue as ECRClient).config as ECRClientResolvedConfig).region()).toBe("eu-west-1");
  });

  it("fails with a 401 naming user AWS, never the token, when the token is stale; a forgotten cache asks ECR again", async () => {
    const stale = `stale-${"Xy7".repeat(30)}`;
    ecr
      .on(GetAuthorizationTokenCommand)
      .resolvesOnce({ authorizationData: [{ authorizationToken: token(stale) }] })
      .resolves({ authorizationData: [{ authorizationToken: token(PASSWORD) }] });
    const cache = new CredentialCache(registry.host, { ecr: { region: "eu-west-1" } }, { env: {} });
    const first = await cache.get();
    const error = await failure(new RegistryClient({ registry: registry.host, auth: first.auth }).ping());
    expect(isTernError(error, "STORAGE_CREDENTIALS")).toBe(true);
    expect(error.status).toBe(401);
    expect(error.message).toContain(`Registry ${registry.host}: cannot reach the v2 API (401`);
    expect(error.message).toContain('the registry refused the credentials of user "AWS"');
    expect(error.message).not.toContain(stale);
    expect(error.message).not.toContain(token(stale));
    cache.forget();
    const renewed = await cache.get();
    await pushAndRead(new RegistryClient({ registry: registry.host, auth: renewed.auth }), "tern/ecr", "2");
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(2);
  });
});
