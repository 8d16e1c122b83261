/**
 * Where DockerStorage's credentials come from: the `auth` option's checks (every bad input named,
 * no secret repeated), environment variables read at use, ECR's GetAuthorizationToken through
 * aws-sdk-client-mock, and the cache.
 */
import { readFile } from "node:fs/promises";
import {
  ECRClient,
  type ECRClientResolvedConfig,
  GetAuthorizationTokenCommand,
  type GetAuthorizationTokenCommandOutput,
} from "@aws-sdk/client-ecr";
import { isTernError } from "@tern/core";
import { checkStorageOptions } from "@tern/core/plugin";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import * as z from "zod/mini";
import {
  type DockerAuthOptions,
  describeDockerAuth,
  dockerAuthSchema,
  ecrRegistryOf,
  looksLikeSecret,
  registryAuthProblem,
} from "../../src/auth-options.js";
import {
  CredentialCache,
  ECR_TOKEN_MARGIN_MS,
  type RegistryCredentials,
  registryCredentials,
} from "../../src/credentials.js";
import { failure } from "../support/failure.js";

const ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const GITHUB_TOKEN = `ghp_${"aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"}`;
const HEX_TOKEN = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";

/** The messages the schema gives for `value`; empty when it accepts it. */
function problems(value: unknown): string[] {
  const result = dockerAuthSchema.safeParse(value);
  return result.success ? [] : result.error.issues.map((issue) => issue.message);
}

/** The one message the schema gives for `value`. */
function problem(value: unknown): string {
  const messages = problems(value);
  expect(messages, `the problems of ${JSON.stringify(value)}`).toHaveLength(1);
  return messages[0] as string;
}

describe("dockerAuthSchema", () => {
  it.each<DockerAuthOptions>([
    "anonymous",
    { passwordEnv: "REGISTRY_PASSWORD", username: "ci" },
    { passwordEnv: "GITHUB_TOKEN", usernameEnv: "GITHUB_ACTOR" },
    { passwordEnv: "CI_REGISTRY_PASSWORD", username: "gitlab-ci-token" },
    { passwordEnv: "myDockerHubPassword2024", username: "acme" },
    { tokenEnv: "REGISTRY_TOKEN" },
    { tokenEnv: "_token_v2" },
    { ecr: true },
    { ecr: {} },
    { ecr: { region: "eu-west-1" } },
    { ecr: { region: "us-gov-west-1" } },
    { ecr: { region: "cn-north-1" } },
  ])("accepts %j", (auth) => {
    expect(problems(auth)).toEqual([]);
  });

  it("refuses strings other than anonymous, and says how to write ECR", () => {
    expect(problem("ecr")).toBe('auth "ecr" is written auth: { ecr: true }.');
    const basic = problem("basic");
    expect(basic).toContain('auth must be one of "anonymous", { passwordEnv, username }');
    expect(basic).toContain("not repeated here in case it is a secret");
    expect(basic).not.toContain('"basic"');
  });

  it("refuses a secret given as auth without repeating it", () => {
    const message = problem(GITHUB_TOKEN);
    expect(message).toContain("auth looks like a secret (a token or password)");
    expect(message).toContain(
      'put the secret in an environment variable and give its name (auth: { tokenEnv: "REGISTRY_TOKEN" })',
    );
    expect(message).not.toContain(GITHUB_TOKEN);
  });

  it.each([
    [42, "not a number"],
    [null, "not null"],
    [["REGISTRY_TOKEN"], "not an array"],
    [true, "not a boolean"],
  ])("refuses %j as auth", (value, said) => {
    expect(problem(value)).toMatch(new RegExp(`^auth must be one of .*, ${said}\\.$`));
  });

  it("refuses an object that gives no form, or several", () => {
    expect(problem({})).toContain("it gives none of passwordEnv, tokenEnv and ecr");
    expect(problems({ passwordEnv: "P", tokenEnv: "T", username: "ci" })).toEqual([
      "auth takes one of passwordEnv, tokenEnv and ecr, not passwordEnv and tokenEnv together.",
    ]);
    expect(problem({ tokenEnv: "T", ecr: true })).toBe(
      "auth takes one of passwordEnv, tokenEnv and ecr, not tokenEnv and ecr together.",
    );
  });

  it("refuses a password or token given as an option, naming the option to use instead and never the value", () => {
    const password = problem({ password: "hunter2", username: "ci" });
    expect(password).toContain("auth.password may not be given");
    expect(password).toContain("stored with every flow");
    expect(password).toContain('auth: { passwordEnv: "REGISTRY_PASSWORD", ... }');
    expect(password).not.toContain("hunter2");
    const token = problem({ token: GITHUB_TOKEN });
    expect(token).toContain("auth.token may not be given");
    expect(token).toContain('tokenEnv: "REGISTRY_TOKEN"');
    expect(token).not.toContain(GITHUB_TOKEN);
  });

  it("names an unknown option, but not one that could be a secret", () => {
    expect(problem({ tokenEnv: "T", scope: "pull" })).toBe(
      'auth has an unknown option "scope"; it takes passwordEnv with username or usernameEnv, tokenEnv, or ecr.',
    );
    const hidden = problem({ tokenEnv: "T", [HEX_TOKEN]: 1 });
    expect(hidden).toContain("auth has an unknown option (a value not shown here in case it is a secret)");
    expect(hidden).not.toContain(HEX_TOKEN);
  });

  it("asks basic credentials for exactly one of username and usernameEnv", () => {
    expect(problem({ passwordEnv: "REGISTRY_PASSWORD" })).toContain(
      "auth.passwordEnv needs a user: give auth.username (the user name) or auth.usernameEnv",
    );
    expect(problem({ passwordEnv: "P", username: "ci", usernameEnv: "USER" })).toBe(
      "auth takes one of username and usernameEnv, not both.",
    );
    expect(problem({ username: "ci" })).toBe(
      "auth.username needs auth.passwordEnv: the environment variable holding the password or access token.",
    );
    expect(problem({ usernameEnv: "REGISTRY_USER" })).toContain("auth.usernameEnv needs auth.passwordEnv");
  });

  it("refuses a user with a token or ECR, which bring none", () => {
    expect(problem({ tokenEnv: "T", username: "ci" })).toContain(
      "auth.username goes with passwordEnv: a tokenEnv token is sent as a bearer token, with no user",
    );
    expect(problem({ ecr: true, usernameEnv: "U" })).toBe(
      "auth.usernameEnv goes with passwordEnv; ECR's token brings its own user.",
    );
  });

  it("refuses a bad user name", () => {
    expect(problem({ passwordEnv: "P", username: "" })).toContain("auth.username is empty");
    expect(problem({ passwordEnv: "P", username: "a:b" })).toContain('auth.username may not contain ":"');
    expect(problem({ passwordEnv: "P", username: 7 })).toBe(
      "auth.username must be a string (the user name), not a number.",
    );
    const token = problem({ passwordEnv: "P", username: GITHUB_TOKEN });
    expect(token).toContain("auth.username looks like a token");
    expect(token).not.toContain(GITHUB_TOKEN);
  });

  it.each([
    ["passwordEnv", { username: "ci" }],
    ["tokenEnv", {}],
    ["usernameEnv", { passwordEnv: "P" }],
  ] as const)("refuses a value of %s that is not a variable name, without repeating it", (option, rest) => {
    const secretLike = [GITHUB_TOKEN, HEX_TOKEN, "AKIAIOSFODNN7EXAMPLE", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2ln"];
    for (const value of secretLike) {
      const message = problem({ ...rest, [option]: value });
      expect(message).toContain(
        `auth.${option} looks like a secret (a token or password), not the name of an environment variable.`,
      );
      expect(message).toContain("put the secret in an environment variable and give its name");
      expect(message).not.toContain(value);
    }
    for (const value of ["my password!", "hunter2-pass", "1PASSWORD"]) {
      const message = problem({ ...rest, [option]: value });
      expect(message).toContain(`auth.${option} must be the name of an environment variable holding`);
      expect(message).toContain("not repeated here in case it is a secret. If it is the secret itself:");
      expect(message).not.toContain(value);
    }
    expect(problem({ ...rest, [option]: "" })).toContain(
      `auth.${option} is empty: give the name of the environment variable`,
    );
    expect(problem({ ...rest, [option]: 5 })).toMatch(
      new RegExp(`^auth\\.${option} must be the name of .*, not a number\\.$`),
    );
  });

  it("tells how to write a variable written the shell's or Node's way", () => {
    expect(problem({ passwordEnv: "$REGISTRY_PASSWORD", username: "ci" })).toBe(
      'auth.passwordEnv must be the variable\'s name alone, without "$" or "process.env.": give "REGISTRY_PASSWORD".',
    );
    expect(problem({ tokenEnv: "$" + "{REGISTRY_TOKEN}" })).toContain('give "REGISTRY_TOKEN"');
    expect(problem({ tokenEnv: "process.env.REGISTRY_TOKEN" })).toContain('give "REGISTRY_TOKEN"');
  });

  it("refuses a bad ecr", () => {
    expect(problem({ ecr: false })).toBe(
      'auth.ecr must be true (the region from the registry host) or { region: "<region>" }, not a boolean. For no credentials leave auth out, or give "anonymous".',
    );
    expect(problem({ ecr: "eu-west-1" })).toContain("auth.ecr must be true");
    expect(problem({ ecr: { region: "EU_WEST" } })).toBe(
      'auth.ecr.region must be an AWS region such as "eu-west-1", not "EU_WEST".',
    );
    expect(problem({ ecr: { region: 1 } })).toContain("not a number");
    expect(problem({ ecr: { region: "eu-west-1", account: "123456789012" } })).toBe(
      'auth.ecr has unknown option "account": it takes region only.',
    );
  });

  it("gives every problem through DockerStorage's options check, each under the storage's name", () => {
    const schema = z.strictObject({ registry: z.string(), auth: z.optional(dockerAuthSchema) });
    const check = (auth: unknown) => {
      try {
        checkStorageOptions("DockerStorage", schema, { registry: "ghcr.io", auth });
      } catch (error) {
        expect(isTernError(error, "STORAGE_OPTIONS")).toBe(true);
        return (error as Error).message;
      }
      return undefined;
    };
    expect(check(undefined)).toBeUndefined();
    expect(check({ tokenEnv: "REGISTRY_TOKEN" })).toBeUndefined();
    const message = check({ password: "hunter2", passwordEnv: "$P" });
    expect(message).toMatch(/^DockerStorage: auth\.password may not be given\./);
    expect(message).toContain('auth.passwordEnv must be the variable\'s name alone, without "$"');
    expect(message).toContain("auth.passwordEnv needs a user");
    expect(message).not.toContain("hunter2");
  });
});

describe("looksLikeSecret", () => {
  it.each([
    GITHUB_TOKEN,
    "github_pat_11AAAAAAA0aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "glpat-xxxxxxxxxxxxxxxxxxxx",
    "dckr_pat_2b3e36beeb386dfdaacb9b46004",
    "AKIAIOSFODNN7EXAMPLE",
    HEX_TOKEN,
    "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA",
  ])("finds %s a secret", (value) => {
    expect(looksLikeSecret(value)).toBe(true);
  });

  it.each([
    "REGISTRY_PASSWORD",
    "GITHUB_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "CI_REGISTRY_PASSWORD_V2",
    "myDockerHubPassword2024",
    "DOCKER_HUB_ACCESS_TOKEN_FOR_ACME_CI",
  ])("finds %s a name", (value) => {
    expect(looksLikeSecret(value)).toBe(false);
  });
});

describe("ecrRegistryOf and registryAuthProblem", () => {
  it("reads the account and region of ECR hosts, and nothing of others", () => {
    expect(ecrRegistryOf(ECR_HOST)).toEqual({
      account: "123456789012",
      region: "eu-west-1",
      fips: false,
      dualStack: false,
    });
    expect(ecrRegistryOf(`https://${ECR_HOST}`)?.region).toBe("eu-west-1");
    expect(ecrRegistryOf("123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM")?.region).toBe("eu-west-1");
    expect(ecrRegistryOf("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn")).toMatchObject({
      account: "210987654321",
      region: "cn-north-1",
    });
    expect(ecrRegistryOf("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com")).toMatchObject({
      region: "us-gov-west-1",
      fips: true,
    });
    expect(ecrRegistryOf("123456789012.dkr-ecr.eu-west-1.on.aws")).toMatchObject({ dualStack: true, fips: false });
    for (const other of [
      "ghcr.io",
      "127.0.0.1:5000",
      `${ECR_HOST}:5000`,
      "12345.dkr.ecr.eu-west-1.amazonaws.com",
      "not a host",
    ]) {
      expect(ecrRegistryOf(other)).toBeUndefined();
    }
  });

  it("asks ECR for a region where the host does not name one, and refuses another region than the host's", () => {
    expect(registryAuthProblem("127.0.0.1:5000", { ecr: true })).toBe(
      'auth.ecr needs a region: registry 127.0.0.1:5000 is not an ECR host (<account>.dkr.ecr.<region>.amazonaws.com), so give auth: { ecr: { region: "<region>" } }.',
    );
    expect(registryAuthProblem(ECR_HOST, { ecr: { region: "us-east-1" } })).toBe(
      `auth.ecr.region is "us-east-1" but registry ${ECR_HOST} is in eu-west-1, and ECR tokens work only in their region: leave the region out (auth: { ecr: true }).`,
    );
    expect(registryAuthProblem("127.0.0.1:5000", { ecr: { region: "eu-west-1" } })).toBeUndefined();
    expect(registryAuthProblem(ECR_HOST, { ecr: { region: "eu-west-1" } })).toBeUndefined();
    expect(registryAuthProblem(ECR_HOST, undefined)).toBeUndefined();
    expect(registryAuthProblem("ghcr.io", { tokenEnv: "T" })).toBeUndefined();
  });

  it("describes auth without a secret", () => {
    expect(describeDockerAuth("ghcr.io", { passwordEnv: "GITHUB_TOKEN", username: "acme" })).toBe(
      'the password in $GITHUB_TOKEN for user "acme"',
    );
    expect(describeDockerAuth("ghcr.io", { passwordEnv: "GITHUB_TOKEN", usernameEnv: "GITHUB_ACTOR" })).toBe(
      "the password in $GITHUB_TOKEN for the user in $GITHUB_ACTOR",
    );
    expect(describeDockerAuth("ghcr.io", { tokenEnv: "T" })).toBe("the bearer token in $T");
    expect(describeDockerAuth("ghcr.io", undefined)).toBe("no credentials (anonymous)");
    expect(describeDockerAuth("ghcr.io", { ecr: true })).toBe(
      "an ECR token (GetAuthorizationToken, in no region known)",
    );
    expect(describeDockerAuth("ghcr.io", { ecr: { region: "us-east-2" } })).toContain(
      "GetAuthorizationToken in us-east-2",
    );
    expect(describeDockerAuth(ECR_HOST, "anonymous")).toBe("no credentials (anonymous)");
    expect(describeDockerAuth(ECR_HOST, undefined)).toBe(
      "an ECR token (GetAuthorizationToken in eu-west-1 with this process's AWS credentials)",
    );
  });
});

describe("registryCredentials from environment variables", () => {
  afterEach(() => vi.unstubAllEnvs());

  it("reads the password and the user at call time, for as long as the process lives", async () => {
    const env: Record<string, string> = { REGISTRY_PASSWORD: "pw-1\n", REGISTRY_USER: "robot" };
    const auth: DockerAuthOptions = { passwordEnv: "REGISTRY_PASSWORD", usernameEnv: "REGISTRY_USER" };
    expect(await registryCredentials("ghcr.io", auth, env)).toEqual({
      auth: { username: "robot", password: "pw-1" },
      expiresAtMs: Number.POSITIVE_INFINITY,
      source: "the password in $REGISTRY_PASSWORD for the user in $REGISTRY_USER",
    });
    env.REGISTRY_PASSWORD = "pw-2";
    expect((await registryCredentials("ghcr.io", auth, env)).auth).toEqual({ username: "robot", password: "pw-2" });
    expect(
      (await registryCredentials("ghcr.io", { passwordEnv: "REGISTRY_PASSWORD", username: "ci" }, env)).auth,
    ).toEqual({ username: "ci", password: "pw-2" });
  });

  it("reads a bearer token, and process.env by default", async () => {
    vi.stubEnv("TERN_TEST_REGISTRY_TOKEN", "tok-123");
    expect(await registryCredentials("ghcr.io", { tokenEnv: "TERN_TEST_REGISTRY_TOKEN" })).toEqual({
      auth: { token: "tok-123" },
      expiresAtMs: Number.POSITIVE_INFINITY,
      source: "the bearer token in $TERN_TEST_REGISTRY_TOKEN",
    });
  });

  it("gives no credentials for anonymous, or no auth on a registry that is not ECR", async () => {
    for (const auth of ["anonymous", undefined] as const) {
      expect(await registryCredentials("ghcr.io", auth, {})).toEqual({
        auth: undefined,
        expiresAtMs: Number.POSITIVE_INFINITY,
        source: "no credentials (anonymous)",
      });
    }
  });

  it("fails naming the variable and the registry when a variable is not set or empty, never a value", async () => {
    const unset = await failure(
      registryCredentials("ghcr.io", { passwordEnv: "REGISTRY_PASSWORD", username: "ci" }, { OTHER: "x" }),
    );
    expect(isTernError(unset, "STORAGE_CREDENTIALS")).toBe(true);
    expect(unset.registry).toBe("ghcr.io");
    expect(unset.message).toBe(
      'Registry ghcr.io: auth.passwordEnv names REGISTRY_PASSWORD, which is not set in this process\'s environment. Set it to the password (or access token) of user "ci" on ghcr.io, or change auth.passwordEnv.',
    );
    const empty = await failure(
      registryCredentials(
        "127.0.0.1:5000",
        { passwordEnv: "REGISTRY_PASSWORD", usernameEnv: "REGISTRY_USER" },
        { REGISTRY_PASSWORD: "pw-secret", REGISTRY_USER: "" },
      ),
    );
    expect(empty.message).toBe(
      "Registry 127.0.0.1:5000: auth.usernameEnv names REGISTRY_USER, which is empty in this process's environment. Set it to the user name for 127.0.0.1:5000, or change auth.usernameEnv.",
    );
    const token = await failure(registryCredentials("ghcr.io", { tokenEnv: "REGISTRY_TOKEN" }, { REGISTRY_TOKEN: "" }));
    expect(token.message).toContain("auth.tokenEnv names REGISTRY_TOKEN, which is empty");
    expect(token.message).toContain("Set it to a bearer token for ghcr.io");
  });

  it("refuses bad options and a bad registry before reading anything", async () => {
    const bad = await failure(
      registryCredentials("ghcr.io", { password: "hunter2" } as unknown as DockerAuthOptions, {}),
    );
    expect(isTernError(bad, "STORAGE_OPTIONS")).toBe(true);
    expect(bad.message).toMatch(/^Registry ghcr\.io: auth\.password may not be given\./);
    expect(bad.message).not.toContain("hunter2");
    const noRegion = await failure(registryCredentials("127.0.0.1:5000", { ecr: true }, {}));
    expect(noRegion.message).toContain("Registry 127.0.0.1:5000: auth.ecr needs a region");
    const registry = await failure(registryCredentials("https://user:pw@ghcr.io/v2", { tokenEnv: "T" }, { T: "t" }));
    expect(isTernError(registry, "STORAGE_OPTIONS")).toBe(true);
    expect(registry.message).not.toContain("pw");
  });
});

describe("registryCredentials from Amazon ECR", () => {
  const ecr = mockClient(ECRClient);
  const PASSWORD = `ecr-password-${"x".repeat(64)}`;
  const TOKEN = Buffer.from(`AWS:${PASSWORD}`).toString("base64");
  const EXPIRES = new Date("2030-01-01T12:00:00Z");

  beforeEach(() => {
    ecr.reset();
    ecr.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [{ authorizationToken: TOKEN, expiresAt: EXPIRES, proxyEndpoint: `https://${ECR_HOST}` }],
    });
  });
  afterEach(() => vi.useRealTimers());

  /** The resolved configuration of the client that made call `index`. */
  const clientConfig = (index: number) => (ecr.call(index).thisValue as ECRClient).config as ECRClientResolvedConfig;

  it("asks for the host's registry in the host's region and decodes the token, kept until a margin before it expires", async () => {
    const credentials = await registryCredentials(ECR_HOST, undefined, {});
    expect(credentials).toEqual({
      auth: { username: "AWS", password: PASSWORD },
      expiresAtMs: EXPIRES.getTime() - ECR_TOKEN_MARGIN_MS,
      source: "an ECR token (GetAuthorizationToken in eu-west-1 with this process's AWS credentials)",
    });
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)[0]?.args[0].input).toEqual({
      registryIds: ["123456789012"],
    });
    expect(await clientConfig(0).region()).toBe("eu-west-1");
    expect(await clientConfig(0).useFipsEndpoint()).toBe(false);
  });

  it("takes the region of China, FIPS and dual-stack hosts, and auth.ecr's region for another host", async () => {
    await registryCredentials("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn", { ecr: true }, {});
    expect(await clientConfig(0).region()).toBe("cn-north-1");
    expect(ecr.call(0).args[0].input).toEqual({ registryIds: ["210987654321"] });
    await registryCredentials("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", { ecr: {} }, {});
    expect(await clientConfig(1).region()).toBe("us-gov-west-1");
    expect(await clientConfig(1).useFipsEndpoint()).toBe(true);
    await registryCredentials("123456789012.dkr-ecr.eu-west-1.on.aws", undefined, {});
    expect(await clientConfig(2).useDualstackEndpoint()).toBe(true);
    await registryCredentials("127.0.0.1:5000", { ecr: { region: "ap-southeast-2" } }, {});
    expect(await clientConfig(3).region()).toBe("ap-southeast-2");
    expect(ecr.call(3).args[0].input).toEqual({});
  });

  it("asks ECR nothing for anonymous or other auth on an ECR host", async () => {
    expect((await registryCredentials(ECR_HOST, "anonymous", {})).auth).toBeUndefined();
    expect((await registryCredentials(ECR_HOST, { tokenEnv: "T" }, { T: "t" })).auth).toEqual({ token: "t" });
    expect(ecr.calls()).toHaveLength(0);
  });

  it("assumes ECR's 12 hours when the answer gives no expiry", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
    ecr.on(GetAuthorizationTokenCommand).resolves({ authorizationData: [{ authorizationToken: TOKEN }] });
    expect((await registryCredentials(ECR_HOST, undefined, {})).expiresAtMs).toBe(
      Date.parse("2030-01-01T12:00:00Z") - ECR_TOKEN_MARGIN_MS,
    );
  });

  it.each<[string, GetAuthorizationTokenCommandOutput["authorizationData"]]>([
    ["no authorizationData", []],
    ["not base64 of user:password", [{ authorizationToken: Buffer.from("no-colon-here").toString("base64") }]],
  ])("fails when the answer has %s", async (said, authorizationData) => {
    ecr.on(GetAuthorizationTokenCommand).resolves({ authorizationData });
    const error = await failure(registryCredentials(ECR_HOST, undefined, {}));
    expect(isTernError(error, "STORAGE_CREDENTIALS")).toBe(true);
    expect(error.message).toBe(
      `Registry ${ECR_HOST}: ECR's GetAuthorizationToken in eu-west-1 answered without a token tern can read (${said}). Try again; if it persists, report it.`,
    );
  });

  const awsError = (name: string, message: string, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(message), { name, ...extra });
  const head = `Registry ${ECR_HOST}: cannot get an ECR token (GetAuthorizationToken in eu-west-1 for registry 123456789012)`;

  it("fails in words when the process has no AWS credentials", async () => {
    ecr
      .on(GetAuthorizationTokenCommand)
      .rejects(awsError("CredentialsProviderError", "Could not load credentials from any providers"));
    const error = await failure(registryCredentials(ECR_HOST, undefined, {}));
    expect(isTernError(error, "STORAGE_CREDENTIALS")).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.registry).toBe(ECR_HOST);
    expect(error.message).toBe(
      `${head}: this process has no AWS credentials (CredentialsProviderError: Could not load credentials from any providers). Give it some (an IAM role, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions, aws-actions/configure-aws-credentials), or, for a registry that is not ECR, give auth.`,
    );
  });

  it("fails naming ecr:GetAuthorizationToken and the stack's ciPolicy when access is denied", async () => {
    const said =
      "User: arn:aws:sts::123456789012:assumed-role/ci/gh is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action";
    ecr
      .on(GetAuthorizationTokenCommand)
      .rejects(awsError("AccessDeniedException", said, { $fault: "client", $metadata: { httpStatusCode: 400 } }));
    const error = await failure(registryCredentials(ECR_HOST, { ecr: true }, {}));
    expect(isTernError(error, "STORAGE_ACCESS")).toBe(true);
    expect(error.message).toBe(
      `${head}: access denied (AccessDeniedException: ${said}). The caller's AWS identity needs ecr:GetAuthorizationToken (on resource "*") and push or pull rights on the repository; in CI with the tern stack, attach the stack's ciPolicy (its CiPolicyArn output) to the CI role.`,
    );
  });

  it("fails naming the region when AWS has no ECR endpoint for it", async () => {
    // What the SDK throws for a region that does not exist (the DNS lookup of api.ecr.<region>.amazonaws.com fails).
    ecr.on(GetAuthorizationTokenCommand).rejects(
      awsError("Error", "getaddrinfo ENOTFOUND api.ecr.eu-nowhere-1.amazonaws.com", {
        code: "ENOTFOUND",
        $metadata: { attempts: 3 },
      }),
    );
    const error = await failure(registryCredentials("123456789012.dkr.ecr.eu-nowhere-1.amazonaws.com", undefined, {}));
    expect(isTernError(error, "STORAGE_OPTIONS")).toBe(true);
    expect(error.message).toContain(
      'cannot get an ECR token (GetAuthorizationToken in eu-nowhere-1 for registry 123456789012): AWS has no ECR endpoint for region "eu-nowhere-1" (Error: getaddrinfo ENOTFOUND api.ecr.eu-nowhere-1.amazonaws.com). Check the region in the registry host',
    );
  });

  it("fails on refused credentials, mentioning opt-in regions for an unrecognized client", async () => {
    ecr
      .on(GetAuthorizationTokenCommand)
      .rejects(awsError("UnrecognizedClientException", "The security token included in the request is invalid."));
    const error = await failure(registryCredentials(ECR_HOST, undefined, {}));
    expect(isTernError(error, "STORAGE_CREDENTIALS")).toBe(true);
    expect(error.message).toContain("AWS refused this process's credentials");
    expect(error.message).toContain("check that region eu-west-1 is enabled for the account");
    ecr.on(GetAuthorizationTokenCommand).rejects(awsError("ExpiredTokenException", "The security token is expired"));
    const expired = await failure(registryCredentials(ECR_HOST, undefined, {}));
    expect(expired.message).toContain("they are invalid or expired; renew them.");
  });

  it("fails retryably when ECR throttles, fails or cannot be reached", async () => {
    for (const [error, words] of [
      [awsError("ThrottlingException", "Rate exceeded", { $fault: "client" }), "ECR is busy or failing"],
      [
        awsError("ServerException", "internal", { $fault: "server", $metadata: { httpStatusCode: 500 } }),
        "ECR is busy or failing",
      ],
      [awsError("Error", "connect ECONNREFUSED 10.0.0.1:443", { code: "ECONNREFUSED" }), "ECR cannot be reached"],
    ] as const) {
      ecr.on(GetAuthorizationTokenCommand).rejects(error);
      const failed = await failure(registryCredentials(ECR_HOST, undefined, {}));
      expect(isTernError(failed, "STORAGE_UNAVAILABLE")).toBe(true);
      expect(failed.retryable).toBe(true);
      expect(failed.message).toContain(`${head}: ${words}`);
    }
  });

  it("never puts the token in a message", async () => {
    ecr.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [{ authorizationToken: Buffer.from(`AWS${PASSWORD}`).toString("base64") }],
    });
    const error = await failure(registryCredentials(ECR_HOST, undefined, {}));
    expect(error.message).not.toContain(PASSWORD);
    expect(error.message).not.toContain(Buffer.from(`AWS${PASSWORD}`).toString("base64"));
  });

  it("imports the ECR client only when a token is asked for", async () => {
    const source = await readFile(new URL("../../src/credentials.ts", import.meta.url), "utf8");
    const imports = source.match(/^import\s[^;]*"@aws-sdk\/client-ecr";/gm) ?? [];
    expect(imports.every((line) => line.startsWith("import type "))).toBe(true);
    expect(source).toContain('await import("@aws-sdk/client-ecr")');
  });
});

describe("CredentialCache", () => {
  const ecr = mockClient(ECRClient);
  const token = (password: string) => Buffer.from(`AWS:${password}`).toString("base64");

  beforeEach(() => {
    ecr.reset();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
  });
  afterEach(() => vi.useRealTimers());

  it("keeps an ECR token until a margin before it expires, then asks again", async () => {
    const expiresAt = new Date("2030-01-01T12:00:00Z");
    ecr
      .on(GetAuthorizationTokenCommand)
      .resolvesOnce({ authorizationData: [{ authorizationToken: token("first"), expiresAt }] })
      .resolves({
        authorizationData: [{ authorizationToken: token("second"), expiresAt: new Date("2030-01-02T00:00:00Z") }],
      });
    const cache = new CredentialCache(ECR_HOST, undefined, { env: {} });
    const [a, b] = await Promise.all([cache.get(), cache.get()]);
    expect(a).toBe(b);
    expect(a.auth).toEqual({ username: "AWS", password: "first" });
    expect(ecr.calls()).toHaveLength(1);
    vi.setSystemTime(expiresAt.getTime() - ECR_TOKEN_MARGIN_MS - 1);
    expect(await cache.get()).toBe(a);
    expect(ecr.calls()).toHaveLength(1);
    vi.setSystemTime(expiresAt.getTime() - ECR_TOKEN_MARGIN_MS);
    expect((await cache.get()).auth).toEqual({ username: "AWS", password: "second" });
    expect(ecr.calls()).toHaveLength(2);
  });

  it("keeps credentials from the environment for good, until forgotten", async () => {
    const env: Record<string, string> = { REGISTRY_TOKEN: "one" };
    const cache = new CredentialCache("ghcr.io", { tokenEnv: "REGISTRY_TOKEN" }, { env });
    const first = await cache.get();
    env.REGISTRY_TOKEN = "two";
    vi.setSystemTime(new Date("2031-01-01T00:00:00Z"));
    expect(await cache.get()).toBe(first);
    cache.forget();
    expect((await cache.get()).auth).toEqual({ token: "two" });
  });

  it("does not keep a failure, nor what a request started before forget() brings", async () => {
    const env: Record<string, string> = {};
    const cache = new CredentialCache("ghcr.io", { tokenEnv: "REGISTRY_TOKEN" }, { env });
    await expect(cache.get()).rejects.toThrow("auth.tokenEnv names REGISTRY_TOKEN, which is not set");
    env.REGISTRY_TOKEN = "set";
    expect((await cache.get()).auth).toEqual({ token: "set" });

    let release: (value: GetAuthorizationTokenCommandOutput) => void = () => {};
    ecr.on(GetAuthorizationTokenCommand).callsFake(
      () =>
        new Promise<GetAuthorizationTokenCommandOutput>((resolve) => {
          release = resolve;
        }),
    );
    const ecrCache = new CredentialCache(ECR_HOST, { ecr: true }, { env: {} });
    const early = ecrCache.get();
    await vi.waitFor(() => expect(ecr.calls()).toHaveLength(1));
    ecrCache.forget();
    release({ authorizationData: [{ authorizationToken: token("early") }], $metadata: {} });
    expect(((await early) as RegistryCredentials).auth).toEqual({ username: "AWS", password: "early" });
    ecr.on(GetAuthorizationTokenCommand).resolves({ authorizationData: [{ authorizationToken: token("late") }] });
    expect((await ecrCache.get()).auth).toEqual({ username: "AWS", password: "late" });
  });
});
