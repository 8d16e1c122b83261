/**
 * GitStorage's token from a Secrets Manager secret: read at use (Secrets Manager mocked, the Git
 * server real and asking for the token), kept out of the storage's JSON and every message, and
 * Secrets Manager's failures in words that name the secret and the fix.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { sha256Hex } from "@tern/core/plugin";
import { GitHubStorage, GitStorage } from "@tern/storage-git";
import { type GitServer, startGitServer } from "@tern/test-support/git-server";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { forgetSecrets } from "../src/auth.js";

const TOKEN = "s3cret-token-from-secrets-manager";
const ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tern/git-token-AbCdEf";
const secrets = mockClient(SecretsManagerClient);
let server: GitServer;
let url: string;
let work: string;
let caches = 0;

beforeAll(async () => {
  server = await startGitServer({ token: { username: "x-access-token", password: TOKEN } });
  url = await server.createRepository("secret");
  work = await mkdtemp(join(tmpdir(), "tern-git-secret-"));
}, 30_000);

afterAll(async () => {
  secrets.restore();
  await server?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

beforeEach(() => {
  secrets.reset();
  forgetSecrets();
});

const storage = (arn = ARN) =>
  new GitStorage({ url, auth: { secretArn: arn }, cacheDirectory: join(work, `cache-${++caches}`) });

/** The error a read through `store` fails with (the test fails if it succeeds). */
async function failure(store: GitStorage): Promise<Error> {
  const error = await store.blobs.list("flows/").then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (error === undefined) throw new Error("expected the read to fail");
  return error;
}

describe("GitStorage with auth.secretArn", { timeout: 60_000 }, () => {
  it("pushes and fetches with the secret's token, read once a minute at most, and stores only the ARN", async () => {
    secrets.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: `${TOKEN}\n` });
    const store = storage();
    const body = Buffer.from("hello from a secret");
    await store.blobs.put("flows/a.txt", body, { sha256: sha256Hex(body) });
    expect(Buffer.from(await storage().blobs.get("flows/a.txt")).toString()).toBe("hello from a secret");
    // Two stores, several requests: one read of the secret in this process.
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    const json = JSON.stringify(store.toJSON());
    expect(json).toContain(ARN);
    expect(json).not.toContain(TOKEN);
  });

  it("says the server refused the secret's token, naming the secret and not the token", async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: "an-old-token" });
    const error = await failure(storage());
    expect(error.message).toContain(`refused the token in secret ${ARN} (401)`);
    expect(error.message).not.toContain("an-old-token");
  });

  it.each([
    [
      "no such secret",
      () =>
        secrets.on(GetSecretValueCommand).rejects(named("ResourceNotFoundException", "Secrets Manager can't find it")),
      /cannot read the token in secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:tern\/git-token-AbCdEf: no such secret\. Check auth\.secretArn\./,
    ],
    [
      "access denied",
      () => secrets.on(GetSecretValueCommand).rejects(named("AccessDeniedException", "not authorized")),
      /access denied\. The process's AWS role needs secretsmanager:GetSecretValue on it \(with the tern stack, list it in storageSecrets\)/,
    ],
    [
      "a JSON secret",
      () => secrets.on(GetSecretValueCommand).resolves({ SecretString: `{"token":"${TOKEN}"}` }),
      /holds JSON, not a token\. Store the token alone/,
    ],
    [
      "a binary secret",
      () => secrets.on(GetSecretValueCommand).resolves({ SecretBinary: Buffer.from(TOKEN) }),
      /has no text value/,
    ],
  ])("refuses %s, naming the secret and never the token", async (_, arrange, message) => {
    arrange();
    const error = await failure(storage());
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain(TOKEN);
    expect(error).toMatchObject({ code: expect.stringMatching(/^STORAGE_(CREDENTIALS|ACCESS)$/) });
  });

  it("reads the secret in the region its ARN names", async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: TOKEN });
    await storage("arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:flows-x1Y2z3").blobs.list("flows/");
    const [call] = secrets.commandCalls(GetSecretValueCommand);
    expect(await call?.thisValue.config.region()).toBe("ap-southeast-2");
  });
});

describe("auth options", () => {
  it.each([
    [{ tokenEnv: "T", secretArn: ARN }, /auth takes one of tokenEnv .* and secretArn/],
    [{}, /auth takes one of tokenEnv .* and secretArn/],
    [{ secretArn: "tern/git-token" }, /auth\.secretArn must be a Secrets Manager secret's ARN .*got "tern\/git-token"/],
  ])("refuses auth %j", (auth, message) => {
    expect(() => new GitStorage({ url: "https://github.com/acme/flows.git", auth: auth as never })).toThrow(message);
  });

  it("lets a hosting service's storage take its token from a secret", () => {
    const storage = new GitHubStorage({ repo: "acme/flows", tokenSecretArn: ARN });
    expect(storage.auth).toEqual({ secretArn: ARN, username: "x-access-token" });
    expect(() => new GitHubStorage({ repo: "acme/flows", tokenEnv: "T", tokenSecretArn: ARN })).toThrow(
      /give tokenEnv or tokenSecretArn, not both/,
    );
    expect(() => new GitHubStorage({ repo: "acme/flows", tokenSecretArn: "git-token" })).toThrow(
      /tokenSecretArn must be a Secrets Manager secret's ARN .*got "git-token"/,
    );
  });
});

function named(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, $fault: "client", $metadata: { httpStatusCode: 400 } });
}
