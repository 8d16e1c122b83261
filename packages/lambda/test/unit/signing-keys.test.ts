import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { LambdaConfig } from "../../src/config.js";
import { SIGNING_SECRET_MAX_AGE_S, SigningKeys, signingKeySource } from "../../src/signing-keys.js";

const ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tern-cloudevents-AbCdEf";
const hmac = (fields: { secret?: string; secretArn?: string }) =>
  ({ cloudEvents: { auth: "hmac", toleranceSeconds: 300, ...fields } }) as unknown as LambdaConfig;

describe("signingKeySource: the secret through the Powertools SecretsProvider", () => {
  const secrets = mockClient(SecretsManagerClient);
  beforeEach(() => {
    secrets.reset();
    vi.useFakeTimers({ toFake: ["Date"] });
  });
  afterEach(() => vi.useRealTimers());

  it("keeps the secret for its max age, so a rotation takes effect then; a read past the cache takes it at once", async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: "o".repeat(40) });
    const source = signingKeySource(hmac({ secretArn: ARN }));
    expect(await source(false)).toEqual([{ key: "o".repeat(40), acceptsV1: true }]);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ current: "n".repeat(40) }) });
    vi.advanceTimersByTime(SIGNING_SECRET_MAX_AGE_S * 1000 - 1000);
    expect((await source(false))[0]?.key).toBe("o".repeat(40));
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(secrets.commandCalls(GetSecretValueCommand)[0]?.args[0].input).toEqual({ SecretId: ARN });
    vi.advanceTimersByTime(2000);
    expect(await source(false)).toEqual([{ key: "n".repeat(40), acceptsV1: false }]);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: "p".repeat(40) });
    expect((await source(true))[0]?.key).toBe("p".repeat(40));
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(3);
  });

  it("refuses a short key with the secret's name, and reads the configuration's secret without Secrets Manager", async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: "short" });
    await expect(signingKeySource(hmac({ secretArn: ARN }))(false)).rejects.toThrow(
      `the CloudEvents signing secret ${ARN} must hold a key of at least 32 characters`,
    );
    const inline = signingKeySource(
      hmac({ secret: JSON.stringify({ current: "c".repeat(32), previous: "p".repeat(32) }) }),
    );
    expect(await inline(false)).toEqual([
      { key: "c".repeat(32), acceptsV1: false },
      { key: "p".repeat(32), acceptsV1: true },
    ]);
    expect(await signingKeySource({} as LambdaConfig)(false)).toEqual([]);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it("with SigningKeys: a Secrets Manager outage keeps the keys read before", async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: "o".repeat(40) });
    const errors: unknown[] = [];
    const ring = await SigningKeys.load(signingKeySource(hmac({ secretArn: ARN })), { onError: (e) => errors.push(e) });
    secrets.on(GetSecretValueCommand).rejects(new Error("Rate exceeded"));
    vi.advanceTimersByTime(SIGNING_SECRET_MAX_AGE_S * 1000 + 1000);
    expect((await ring.current())[0]?.key).toBe("o".repeat(40));
    expect(await ring.current()).toHaveLength(1);
    expect(errors).toEqual([expect.objectContaining({ message: "Rate exceeded" })]);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });
});
