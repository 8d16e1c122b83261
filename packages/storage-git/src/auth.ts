/**
 * Where GitStorage's token comes from: an environment variable, or a Secrets Manager secret read
 * with the process's AWS credentials. Either is read when a request needs it and kept only in
 * memory (a secret for {@link SECRET_MAX_AGE_S}); the token never reaches a manifest, the backend
 * or a message.
 */
import type { SecretsProvider } from "@aws-lambda-powertools/parameters/secrets";
import { TernError } from "@tern/core";

/** How GitStorage authenticates to the repository's server: a token and the user name sent with it. */
export type GitAuthOptions =
  | {
      /** The environment variable holding the token. */
      readonly tokenEnv: string;
      readonly secretArn?: never;
      /**
       * The user name sent with the token (HTTP basic auth).
       * @default "x-access-token" (GitHub; GitLab takes "oauth2", Bitbucket "x-token-auth")
       */
      readonly username?: string;
    }
  | {
      /** A Secrets Manager secret whose value (a plain string) is the token. */
      readonly secretArn: string;
      readonly tokenEnv?: never;
      /** @default "x-access-token" */
      readonly username?: string;
    };

/** How long a process uses a secret it read before reading it again, in seconds. */
export const SECRET_MAX_AGE_S = 60;

const DEFAULT_USERNAME = "x-access-token";

/** `auth` in the words messages use: `the token in $GITHUB_TOKEN`, `the token in secret <arn>`. */
export function describeAuth(auth: GitAuthOptions): string {
  return auth.secretArn === undefined ? `the token in $${auth.tokenEnv}` : `the token in secret ${auth.secretArn}`;
}

/** The Authorization header for `auth`, its token read now (a secret: from this process's cache while fresh). */
export async function authHeader(auth: GitAuthOptions): Promise<Record<string, string>> {
  const token = auth.secretArn === undefined ? tokenFromEnv(auth.tokenEnv) : await tokenFromSecret(auth.secretArn);
  const basic = Buffer.from(`${auth.username ?? DEFAULT_USERNAME}:${token}`).toString("base64");
  return { Authorization: `Basic ${basic}` };
}

function tokenFromEnv(name: string): string {
  const token = process.env[name];
  if (token === undefined || token === "") {
    throw new TernError(
      "STORAGE_CREDENTIALS",
      `GitStorage: auth.tokenEnv names ${name}, which is not set in this process's environment. Set it to a token that can read (and, to register, push to) the repository.`,
    );
  }
  return token;
}

/** One provider (and its cache) per region, made on first use: most processes never read a secret. */
const providers = new Map<string, Promise<SecretsProvider>>();

function provider(region: string): Promise<SecretsProvider> {
  let made = providers.get(region);
  if (made === undefined) {
    made = Promise.all([
      import("@aws-lambda-powertools/parameters/secrets"),
      import("@aws-sdk/client-secrets-manager"),
    ]).then(
      ([{ SecretsProvider }, { SecretsManagerClient }]) =>
        new SecretsProvider({ awsSdkV3Client: new SecretsManagerClient({ region }) }),
    );
    providers.set(region, made);
  }
  return made;
}

/** Forgets the secrets this process read (tests; a rotated token is otherwise read again within a minute). */
export function forgetSecrets(): void {
  providers.clear();
}

async function tokenFromSecret(arn: string): Promise<string> {
  // The ARN was checked when the storage was made: arn:<partition>:secretsmanager:<region>:...
  const region = arn.split(":")[3] as string;
  let value: unknown;
  try {
    value = await (await provider(region)).get(arn, { maxAge: SECRET_MAX_AGE_S });
  } catch (error) {
    throw secretError(arn, error);
  }
  if (typeof value !== "string" || value.trim() === "") {
    throw new TernError(
      "STORAGE_CREDENTIALS",
      `GitStorage: secret ${arn} has no text value. Store the token as the secret's plain text (SecretString).`,
    );
  }
  if (value.trimStart().startsWith("{")) {
    throw new TernError(
      "STORAGE_CREDENTIALS",
      `GitStorage: secret ${arn} holds JSON, not a token. Store the token alone as the secret's plain text.`,
    );
  }
  return value.trim();
}

/** A Secrets Manager failure in words, naming the secret (never its value) and the fix. */
function secretError(arn: string, error: unknown): TernError {
  // Powertools wraps the SDK's error; the SDK's own is the cause.
  const sdk = (error as { cause?: unknown }).cause ?? error;
  const name = (sdk as Error | undefined)?.name ?? "";
  const what = `GitStorage: cannot read the token in secret ${arn}`;
  if (name === "ResourceNotFoundException") {
    return new TernError("STORAGE_CREDENTIALS", `${what}: no such secret. Check auth.secretArn.`, { cause: error });
  }
  if (name === "AccessDeniedException" || name === "AccessDenied") {
    return new TernError(
      "STORAGE_ACCESS",
      `${what}: access denied. The process's AWS role needs secretsmanager:GetSecretValue on it (with the tern stack, list it in storageSecrets), and kms:Decrypt if a customer key encrypts it.`,
      { cause: error },
    );
  }
  if (name === "CredentialsProviderError") {
    return new TernError(
      "STORAGE_CREDENTIALS",
      `${what}: no AWS credentials in this process. Give it AWS credentials (a role, AWS_PROFILE or the AWS_* variables), or use auth.tokenEnv.`,
      { cause: error },
    );
  }
  // A server fault, or no answer at all, may pass; anything else the caller must fix.
  const fault = (sdk as { $fault?: string }).$fault;
  const answered = (sdk as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== undefined;
  return new TernError(
    fault === "client" ? "STORAGE_CREDENTIALS" : "STORAGE_UNAVAILABLE",
    `${what}: ${(sdk as Error).message}`,
    {
      cause: error,
      retryable: fault === "server" || !answered,
    },
  );
}
