/**
 * Resolving DockerStorage's `auth` (auth-options.ts) into credentials when a request needs them:
 * environment variables read at that moment, or a token from Amazon ECR's
 * `GetAuthorizationToken` for the process's AWS credentials (the SDK is imported on the first
 * token, so loading the storage does not load it), kept until shortly before it expires. Secrets
 * are kept only in memory and never appear in a message or a log.
 */
import type { ECRClient, GetAuthorizationTokenCommandOutput } from "@aws-sdk/client-ecr";
import {
  type DockerAuthOptions,
  describeDockerAuth,
  dockerAuthProblems,
  ecrTarget,
  registryAuthProblem,
} from "./auth-options.js";
import { RegistryError, type RegistryErrorContext, where } from "./errors.js";
import type { RegistryAuth } from "./registry/auth.js";
import { registryBaseUrl } from "./registry/endpoint.js";

/** Credentials to give a `RegistryClient`, and until when to use them. */
export interface RegistryCredentials {
  /** `undefined`: anonymous. */
  readonly auth: RegistryAuth | undefined;
  /**
   * After this time (ms since the epoch) get new ones: an ECR token's expiry less
   * {@link ECR_TOKEN_MARGIN_MS}; `Infinity` for credentials read from the environment, or none.
   */
  readonly expiresAtMs: number;
  /** Where they came from, for messages (never the secret): `the password in $REGISTRY_PASSWORD for user "ci"`. */
  readonly source: string;
}

/** An ECR token is not used for a new operation in the last this many ms of its 12 hours, so that a long push finishes with it. */
export const ECR_TOKEN_MARGIN_MS = 10 * 60_000;
/** ECR's documented token lifetime, assumed when its answer gives no `expiresAt`. */
const ECR_TOKEN_LIFETIME_MS = 12 * 60 * 60_000;
/** How long an ECR API call may take (the SDK retries within it). */
const ECR_REQUEST_TIMEOUT_MS = 30_000;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The credentials `auth` points to for `registry` (as image references name it), read now:
 * environment variables from `env`, or a token from Amazon ECR (for `{ ecr }`, or when `auth` is
 * absent and the registry is an ECR host) with this process's AWS credentials.
 *
 * Fails with a `RegistryError` naming the registry and the fix, never a secret:
 * `STORAGE_OPTIONS` for bad options, `STORAGE_CREDENTIALS` for a variable that is not set or AWS
 * credentials that are missing or refused, `STORAGE_ACCESS` when AWS denies
 * `ecr:GetAuthorizationToken`, `STORAGE_UNAVAILABLE` (retryable) when ECR is busy or unreachable.
 *
 * @example
 * const { auth } = await registryCredentials("ghcr.io", { passwordEnv: "GITHUB_TOKEN", usernameEnv: "GITHUB_ACTOR" });
 * const client = new RegistryClient({ registry: "ghcr.io", auth });
 */
export async function registryCredentials(
  registry: string,
  auth: DockerAuthOptions | undefined,
  env: Env = process.env,
): Promise<RegistryCredentials> {
  const host = registryBaseUrl(registry).host;
  const source = describeDockerAuth(registry, auth);
  const context: RegistryErrorContext = { registry: host, auth: source };
  const problems = auth === undefined ? [] : dockerAuthProblems(auth);
  const between = registryAuthProblem(registry, auth);
  if (between !== undefined) problems.push(between);
  if (problems.length > 0) {
    throw new RegistryError("STORAGE_OPTIONS", `${where(context)}: ${problems.join(" ")}`, context);
  }
  const ecr = ecrTarget(registry, auth);
  if (ecr !== undefined) return ecrCredentials(ecr, context);
  const forever = (value: RegistryAuth | undefined): RegistryCredentials => ({
    auth: value,
    expiresAtMs: Number.POSITIVE_INFINITY,
    source,
  });
  if (auth === undefined || auth === "anonymous") return forever(undefined);
  if ("tokenEnv" in auth) {
    return forever({ token: readEnv(env, "auth.tokenEnv", auth.tokenEnv, `a bearer token for ${host}`, context) });
  }
  if (!("passwordEnv" in auth)) return forever(undefined);
  const username =
    auth.username ?? readEnv(env, "auth.usernameEnv", auth.usernameEnv, `the user name for ${host}`, context);
  const who = auth.username === undefined ? `the user in $${auth.usernameEnv}` : `user ${JSON.stringify(username)}`;
  const password = readEnv(
    env,
    "auth.passwordEnv",
    auth.passwordEnv,
    `the password (or access token) of ${who} on ${host}`,
    context,
  );
  return forever({ username, password });
}

/** The value of environment variable `name`, without a trailing line break; a `STORAGE_CREDENTIALS` error when unset or empty. */
function readEnv(env: Env, option: string, name: string, what: string, context: RegistryErrorContext): string {
  const value = env[name]?.replace(/\r?\n$/, "");
  if (value === undefined || value === "") {
    throw new RegistryError(
      "STORAGE_CREDENTIALS",
      `${where(context)}: ${option} names ${name}, which is ${env[name] === undefined ? "not set" : "empty"} in this process's environment. Set it to ${what}, or change ${option}.`,
      context,
    );
  }
  return value;
}

/** One ECR token from `GetAuthorizationToken`, decoded into basic credentials. */
async function ecrCredentials(
  target: { region: string; account?: string; fips: boolean; dualStack: boolean },
  context: RegistryErrorContext,
): Promise<RegistryCredentials> {
  const sdk = await import("@aws-sdk/client-ecr");
  const client: ECRClient = new sdk.ECRClient({
    region: target.region,
    useFipsEndpoint: target.fips,
    useDualstackEndpoint: target.dualStack,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: ECR_REQUEST_TIMEOUT_MS },
  });
  let answer: GetAuthorizationTokenCommandOutput;
  try {
    answer = await client.send(
      new sdk.GetAuthorizationTokenCommand(target.account === undefined ? {} : { registryIds: [target.account] }),
    );
  } catch (error) {
    throw ecrError(error, target, context);
  } finally {
    client.destroy();
  }
  const data = answer.authorizationData?.[0];
  const decoded =
    typeof data?.authorizationToken === "string" ? Buffer.from(data.authorizationToken, "base64").toString("utf8") : "";
  const colon = decoded.indexOf(":");
  if (colon <= 0 || colon === decoded.length - 1) {
    throw new RegistryError(
      "STORAGE_CREDENTIALS",
      `${where(context)}: ECR's GetAuthorizationToken in ${target.region} answered without a token tern can read (${data === undefined ? "no authorizationData" : "not base64 of user:password"}). Try again; if it persists, report it.`,
      context,
    );
  }
  const now = Date.now();
  const expiresAt = data?.expiresAt instanceof Date ? data.expiresAt.getTime() : now + ECR_TOKEN_LIFETIME_MS;
  return {
    auth: { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) },
    // A clock far ahead of AWS's must not make every use ask for a new token.
    expiresAtMs: Math.max(expiresAt - ECR_TOKEN_MARGIN_MS, now + 60_000),
    source: context.auth ?? "an ECR token",
  };
}

const REFUSED_CREDENTIALS = new Set([
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "InvalidClientTokenId",
  "ExpiredToken",
  "ExpiredTokenException",
  "IncompleteSignature",
]);
const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]);

/** An ECR failure in words naming the registry, what AWS said (never a token) and the fix. */
function ecrError(
  error: unknown,
  target: { region: string; account?: string },
  context: RegistryErrorContext,
): RegistryError {
  const e = (error ?? {}) as {
    name?: string;
    message?: string;
    code?: string;
    $fault?: string;
    $metadata?: { httpStatusCode?: number };
    cause?: { code?: string };
  };
  const name = e.name ?? "Error";
  const message = e.message ?? String(error);
  const said = `${name}: ${message}`;
  const head = `${where(context)}: cannot get an ECR token (GetAuthorizationToken in ${target.region}${target.account === undefined ? "" : ` for registry ${target.account}`})`;
  const status = e.$metadata?.httpStatusCode;
  const options = { cause: error, status };
  const code = e.code ?? e.cause?.code ?? /\b(ENOTFOUND|E(?:CONN|HOST|NET|AI_|TIMED)[A-Z_]+)\b/.exec(message)?.[1];
  if (name === "CredentialsProviderError" || /could not load credentials/i.test(message)) {
    return new RegistryError(
      "STORAGE_CREDENTIALS",
      `${head}: this process has no AWS credentials (${said}). Give it some (an IAM role, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions, aws-actions/configure-aws-credentials), or, for a registry that is not ECR, give auth.`,
      context,
      options,
    );
  }
  if (REFUSED_CREDENTIALS.has(name)) {
    return new RegistryError(
      "STORAGE_CREDENTIALS",
      `${head}: AWS refused this process's credentials (${said}): they are invalid or expired; renew them${name === "UnrecognizedClientException" ? `, and check that region ${target.region} is enabled for the account (opt-in regions are off until enabled)` : ""}.`,
      context,
      options,
    );
  }
  if (name === "AccessDeniedException" || name === "AccessDenied" || status === 403) {
    return new RegistryError(
      "STORAGE_ACCESS",
      `${head}: access denied (${said}). The caller's AWS identity needs ecr:GetAuthorizationToken (on resource "*") and push or pull rights on the repository; in CI with the tern stack, attach the stack's ciPolicy (its CiPolicyArn output) to the CI role.`,
      context,
      options,
    );
  }
  if (code === "ENOTFOUND") {
    return new RegistryError(
      "STORAGE_OPTIONS",
      `${head}: AWS has no ECR endpoint for region ${JSON.stringify(target.region)} (${said}). Check the region in the registry host (<account>.dkr.ecr.<region>.amazonaws.com) or auth.ecr.region, and that this machine resolves AWS's host names.`,
      context,
      options,
    );
  }
  const busy = name === "ThrottlingException" || name === "ServerException" || (status !== undefined && status >= 500);
  const unreachable =
    (code !== undefined && UNREACHABLE.has(code)) || name === "TimeoutError" || name === "RequestTimeout";
  if (busy || unreachable) {
    return new RegistryError(
      "STORAGE_UNAVAILABLE",
      `${head}: ${busy ? "ECR is busy or failing" : "ECR cannot be reached"} (${said}); try again.`,
      context,
      { ...options, retryable: true },
    );
  }
  return new RegistryError(
    e.$fault === "client" ? "STORAGE_CREDENTIALS" : "STORAGE",
    `${head}: ${said}.`,
    context,
    options,
  );
}

// ---------------------------------------------------------------------------------------------
// The cache.

/**
 * One registry's resolved credentials, kept until they expire: an ECR token until
 * {@link ECR_TOKEN_MARGIN_MS} before its 12 hours end, credentials from environment variables
 * (and none) for the life of the process. `get()` gives the same object while it is fresh, so a
 * caller can keep one `RegistryClient` per credentials object (a client keeps the registry's
 * bearer tokens for the credentials it was made with); concurrent callers share one request,
 * and a failure is not kept.
 *
 * @example
 * const credentials = new CredentialCache(options.registry, options.auth);
 * const { auth } = await credentials.get();
 */
export class CredentialCache {
  readonly registry: string;
  readonly auth: DockerAuthOptions | undefined;
  readonly #env: Env;
  #current: RegistryCredentials | undefined;
  #pending: Promise<RegistryCredentials> | undefined;
  /** Bumped by `forget()`, so that a request started before it does not fill the cache. */
  #generation = 0;

  constructor(registry: string, auth: DockerAuthOptions | undefined, options: { readonly env?: Env } = {}) {
    this.registry = registry;
    this.auth = auth;
    this.#env = options.env ?? process.env;
  }

  /** The credentials to use now: the kept ones while fresh, else read (or asked of ECR) again. */
  get(): Promise<RegistryCredentials> {
    if (this.#current !== undefined && this.#current.expiresAtMs > Date.now()) return Promise.resolve(this.#current);
    if (this.#pending === undefined) {
      const generation = this.#generation;
      const pending = registryCredentials(this.registry, this.auth, this.#env).then((credentials) => {
        if (generation === this.#generation) this.#current = credentials;
        return credentials;
      });
      this.#pending = pending;
      const clear = () => {
        if (this.#pending === pending) this.#pending = undefined;
      };
      pending.then(clear, clear);
    }
    return this.#pending;
  }

  /** Forgets the kept credentials, so that the next `get()` reads them again (after the registry refused them: they may have been renewed). */
  forget(): void {
    this.#generation++;
    this.#current = undefined;
    this.#pending = undefined;
  }
}
