/**
 * DockerStorage's `auth` option and its checks: where the registry credentials come from. The storage's options are stored with
 * every flow (manifests, the state table), so `auth` says only where a secret is: the names of
 * environment variables, read when credentials are needed, or `ecr`, a token that Amazon ECR's
 * `GetAuthorizationToken` gives for the process's AWS credentials (the SDK is imported on the
 * first token, so loading the storage does not load it). Docker's config file and credential
 * helpers need Docker, which tern does without. Secrets are kept only in memory and never appear
 * in a message or a log.
 */
import * as z from "zod/mini";
import { registryBaseUrl } from "./registry/endpoint.js";

/**
 * How DockerStorage authenticates to its registry: where the credentials are, never the
 * credentials themselves. Absent: ECR's token for an ECR registry
 * (`<account>.dkr.ecr.<region>.amazonaws.com`), anonymous for any other.
 *
 * @example
 * { passwordEnv: "REGISTRY_PASSWORD", username: "ci" }     // basic credentials from $REGISTRY_PASSWORD
 * { passwordEnv: "GITHUB_TOKEN", usernameEnv: "GITHUB_ACTOR" } // ghcr.io from GitHub Actions
 * { tokenEnv: "REGISTRY_TOKEN" }                             // a bearer token, sent as it is
 * { ecr: true }                                              // Amazon ECR, the region from the registry host
 * { ecr: { region: "eu-west-1" } }                           // ECR behind a host that does not name its region
 * "anonymous"                                                // no credentials, even for an ECR host
 */
export type DockerAuthOptions =
  /** No credentials (anonymous tokens from the registry's token flow still pull public images). */
  | "anonymous"
  | DockerBasicAuthOptions
  | {
      /** The environment variable holding a bearer token, sent as it is (`Authorization: Bearer`). */
      readonly tokenEnv: string;
    }
  | {
      /**
       * Amazon ECR: a token from `GetAuthorizationToken` with this process's AWS credentials, valid
       * 12 hours. `true` takes the region from the registry host; `region` gives it when the host
       * does not name it (a proxy in front of ECR).
       */
      readonly ecr: true | { readonly region?: string };
    };

/**
 * Basic credentials: a user and the environment variable holding the password (or an access
 * token the registry takes as a password, such as a GitHub token for ghcr.io), also used to get
 * bearer tokens from the registry's token service.
 */
export type DockerBasicAuthOptions = {
  /** The environment variable holding the password or access token. */
  readonly passwordEnv: string;
} & (
  | {
      /** The user name. */
      readonly username: string;
      readonly usernameEnv?: never;
    }
  | {
      /** The environment variable holding the user name. */
      readonly usernameEnv: string;
      readonly username?: never;
    }
);

/** An Amazon ECR private registry, as its host names it. */
export interface EcrRegistry {
  /** The registry id: the 12-digit AWS account. */
  readonly account: string;
  readonly region: string;
  /** `dkr.ecr-fips` / `dkr-ecr-fips` hosts: the FIPS endpoints. */
  readonly fips: boolean;
  /** `<account>.dkr-ecr.<region>.on.aws`: the dual-stack (IPv6) endpoints. */
  readonly dualStack: boolean;
}

const ECR_HOST = /^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;
const ECR_DUAL_STACK_HOST = /^(\d{12})\.dkr-ecr(-fips)?\.([a-z0-9-]+)\.on\.aws$/;

/**
 * The ECR registry a registry host names (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`,
 * `.amazonaws.com.cn` in China, `dkr.ecr-fips` for FIPS, `<account>.dkr-ecr.<region>.on.aws`
 * dual-stack), or undefined for any other host.
 */
export function ecrRegistryOf(registry: string): EcrRegistry | undefined {
  const host = hostOf(registry);
  const match = host === undefined ? null : (ECR_HOST.exec(host) ?? ECR_DUAL_STACK_HOST.exec(host));
  if (match === null) return undefined;
  return {
    account: match[1] as string,
    region: match[3] as string,
    fips: match[2] !== undefined,
    dualStack: host?.endsWith(".on.aws") === true,
  };
}

/** The registry's host as messages name it (`ghcr.io`, `127.0.0.1:5000`), or undefined when it is not a registry. */
function hostOf(registry: string): string | undefined {
  try {
    return registryBaseUrl(registry).host;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The `auth` option's checks.

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REGION = /^[a-z]{2,}(?:-[a-z]+)+-\d{1,2}$/;

/** Tokens with a known shape: GitHub, GitLab, Docker Hub, npm and Slack tokens, AWS access key ids, JWTs. */
const KNOWN_TOKENS = [
  /^gh[pousr]_[A-Za-z0-9]{30,}$/,
  /^github_pat_[A-Za-z0-9_]{30,}$/,
  /^glpat-[A-Za-z0-9_-]{20,}$/,
  /^dckr_pat_[A-Za-z0-9_-]{20,}$/,
  /^npm_[A-Za-z0-9]{30,}$/,
  /^xox[abposr]-/,
  /^(?:AKIA|ASIA)[A-Z0-9]{16}$/,
  /^eyJ[A-Za-z0-9_-]{10,}/,
];

/**
 * Whether `value` looks like a secret rather than a name: a token of a known shape, or 20 or more
 * letters and digits that split into words of fewer than three characters on average, as random
 * text does (`a94a8fe5ccb1...` is `a 94 a 8 fe 5 ccb 1...`, while `REGISTRY_PASSWORD` and
 * `myDockerHubPassword2024` are words).
 */
export function looksLikeSecret(value: string): boolean {
  if (KNOWN_TOKENS.some((pattern) => pattern.test(value))) return true;
  if (/\s/.test(value)) return false;
  const characters = value.replace(/[^A-Za-z0-9]/g, "").length;
  const words = value.match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+/g)?.length ?? 0;
  return characters >= 20 && characters / words < 3;
}

const FORMS =
  '"anonymous", { passwordEnv, username } (or usernameEnv), { tokenEnv } or { ecr: true } (or { ecr: { region } })';

/** Why a secret may not be in the options, and where to put it. */
function secretFix(example: string): string {
  return `The storage's options are stored with every flow, so they may say only where a secret is: put the secret in an environment variable and give its name (${example}).`;
}

/** What is wrong with `value` as the name of an environment variable given as `option`; undefined when nothing. It never repeats a value that could be a secret. */
function envNameProblem(option: string, value: unknown, holds: string, example: string): string | undefined {
  if (typeof value !== "string") {
    return `${option} must be the name of the environment variable holding ${holds} (a string such as "${example}"), not ${kindOf(value)}.`;
  }
  if (value === "")
    return `${option} is empty: give the name of the environment variable holding ${holds} (such as "${example}").`;
  if (looksLikeSecret(value)) {
    return `${option} looks like a secret (a token or password), not the name of an environment variable. ${secretFix(`${option}: "${example}"`)}`;
  }
  const written = /^(?:\$\{?|process\.env\.)([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(value);
  if (written !== null) {
    return `${option} must be the variable's name alone, without "$" or "process.env.": give "${written[1]}".`;
  }
  if (!ENV_NAME.test(value)) {
    return `${option} must be the name of an environment variable holding ${holds} (letters, digits and "_", not starting with a digit, such as "${example}"); the value given is not one, and is not repeated here in case it is a secret. If it is the secret itself: ${secretFix(`${option}: "${example}"`)}`;
  }
  return undefined;
}

/** What is wrong with a user name given in the options; undefined when nothing. */
function usernameProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return `auth.username must be a string (the user name), not ${kindOf(value)}.`;
  if (value === "") return 'auth.username is empty: give the user name, or auth.usernameEnv: "<VARIABLE>" to read it.';
  if (KNOWN_TOKENS.some((pattern) => pattern.test(value))) {
    return `auth.username looks like a token, not a user name. ${secretFix('auth.passwordEnv: "REGISTRY_TOKEN"')}`;
  }
  // Basic auth joins user and password with ":"; a user name cannot hold one.
  if (value.includes(":") || [...value].some((char) => char < " " || char === "\u007f")) {
    return 'auth.username may not contain ":" or control characters (basic auth sends "user:password").';
  }
  return undefined;
}

/** What is wrong with `auth.ecr`; undefined when nothing. */
function ecrProblem(value: unknown): string | undefined {
  if (value === true) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `auth.ecr must be true (the region from the registry host) or { region: "<region>" }, not ${kindOf(value)}. For no credentials leave auth out, or give "anonymous".`;
  }
  const unknown = Object.keys(value).filter((key) => key !== "region");
  if (unknown.length > 0) {
    return `auth.ecr has unknown option${unknown.length === 1 ? "" : "s"} ${unknown.map(shown).join(", ")}: it takes region only.`;
  }
  const region = (value as { region?: unknown }).region;
  if (region !== undefined && (typeof region !== "string" || !REGION.test(region))) {
    return `auth.ecr.region must be an AWS region such as "eu-west-1", not ${typeof region === "string" ? shown(region) : kindOf(region)}.`;
  }
  return undefined;
}

/** Option keys that would hold a secret, and the option to give instead. */
const SECRET_KEYS: Record<string, string> = {
  password: 'passwordEnv: "REGISTRY_PASSWORD"',
  token: 'tokenEnv: "REGISTRY_TOKEN"',
  accessToken: 'passwordEnv: "REGISTRY_TOKEN"',
  identityToken: 'tokenEnv: "REGISTRY_TOKEN"',
  secret: 'passwordEnv: "REGISTRY_PASSWORD"',
  auth: 'passwordEnv: "REGISTRY_PASSWORD"',
};
const KEYS = new Set(["passwordEnv", "username", "usernameEnv", "tokenEnv", "ecr"]);

/**
 * Everything wrong with a value given as DockerStorage's `auth` option, each problem a sentence
 * naming the option and the fix (and never repeating what could be a secret); empty when nothing.
 */
export function dockerAuthProblems(auth: unknown): string[] {
  if (auth === "anonymous") return [];
  if (typeof auth === "string") {
    if (auth === "ecr") return ['auth "ecr" is written auth: { ecr: true }.'];
    if (looksLikeSecret(auth)) {
      return [`auth looks like a secret (a token or password). ${secretFix('auth: { tokenEnv: "REGISTRY_TOKEN" }')}`];
    }
    return [
      `auth must be one of ${FORMS}; a string other than "anonymous" is none of them (not repeated here in case it is a secret).`,
    ];
  }
  if (typeof auth !== "object" || auth === null || Array.isArray(auth)) {
    return [`auth must be one of ${FORMS}, not ${kindOf(auth)}.`];
  }
  const given = auth as Record<string, unknown>;
  const keys = Object.keys(given).filter((key) => given[key] !== undefined);
  const problems: string[] = [];
  for (const key of keys) {
    const instead = SECRET_KEYS[key];
    if (instead !== undefined) {
      problems.push(`auth.${key} may not be given. ${secretFix(`auth: { ${instead}, ... }`)}`);
    } else if (!KEYS.has(key)) {
      problems.push(
        `auth has an unknown option ${shown(key)}; it takes passwordEnv with username or usernameEnv, tokenEnv, or ecr.`,
      );
    }
  }
  const forms = ["passwordEnv", "tokenEnv", "ecr"].filter((key) => given[key] !== undefined);
  const users = ["username", "usernameEnv"].filter((key) => given[key] !== undefined);
  if (forms.length > 1) {
    problems.push(`auth takes one of passwordEnv, tokenEnv and ecr, not ${forms.join(" and ")} together.`);
  } else if (forms.length === 0 && problems.length === 0) {
    problems.push(
      users.length > 0
        ? `auth.${users[0]} needs auth.passwordEnv: the environment variable holding the password or access token.`
        : `auth must be one of ${FORMS}; it gives none of passwordEnv, tokenEnv and ecr.`,
    );
  }
  if (given.passwordEnv !== undefined) {
    const problem = envNameProblem(
      "auth.passwordEnv",
      given.passwordEnv,
      "the password or access token",
      "REGISTRY_PASSWORD",
    );
    if (problem !== undefined) problems.push(problem);
    if (users.length === 0) {
      problems.push(
        'auth.passwordEnv needs a user: give auth.username (the user name) or auth.usernameEnv (the environment variable holding it). For a token the registry takes as a password, any user it accepts (ghcr.io: your GitHub user; GitLab: "oauth2").',
      );
    } else if (users.length > 1) {
      problems.push("auth takes one of username and usernameEnv, not both.");
    }
    if (given.username !== undefined) {
      const userProblem = usernameProblem(given.username);
      if (userProblem !== undefined) problems.push(userProblem);
    }
    if (given.usernameEnv !== undefined) {
      const userProblem = envNameProblem("auth.usernameEnv", given.usernameEnv, "the user name", "REGISTRY_USER");
      if (userProblem !== undefined) problems.push(userProblem);
    }
  } else if (forms.length === 1 && users.length > 0) {
    problems.push(
      given.tokenEnv !== undefined
        ? `auth.${users[0]} goes with passwordEnv: a tokenEnv token is sent as a bearer token, with no user. For a token the registry takes as a password (a GitHub token on ghcr.io), give passwordEnv with username.`
        : `auth.${users[0]} goes with passwordEnv; ECR's token brings its own user.`,
    );
  }
  if (given.tokenEnv !== undefined) {
    const problem = envNameProblem("auth.tokenEnv", given.tokenEnv, "the bearer token", "REGISTRY_TOKEN");
    if (problem !== undefined) problems.push(problem);
  }
  if (given.ecr !== undefined) {
    const problem = ecrProblem(given.ecr);
    if (problem !== undefined) problems.push(problem);
  }
  return problems;
}

/**
 * The zod schema of DockerStorage's `auth` option (a {@link DockerAuthOptions}): one issue per
 * problem, each message naming the option and the fix (`auth.passwordEnv must be the name of an
 * environment variable ...`), never repeating a value that could be a secret. Use it as
 * `auth: z.optional(dockerAuthSchema)` in the storage's options schema.
 */
export const dockerAuthSchema = z.custom<DockerAuthOptions>().check(
  z.superRefine((value, context) => {
    for (const message of dockerAuthProblems(value)) context.addIssue({ code: "custom", message });
  }),
);

/**
 * What is wrong between the `registry` and `auth` options; undefined when nothing (or when the
 * registry is not a registry host, which its own check reports): ECR needs a region, which an
 * ECR host names and another host does not, and a token from another region is refused.
 */
export function registryAuthProblem(registry: string, auth: DockerAuthOptions | undefined): string | undefined {
  const host = hostOf(registry);
  if (host === undefined || auth === undefined || typeof auth !== "object" || !("ecr" in auth)) return undefined;
  const ecr = ecrRegistryOf(registry);
  const region = auth.ecr === true ? undefined : auth.ecr.region;
  if (ecr === undefined && region === undefined) {
    return `auth.ecr needs a region: registry ${host} is not an ECR host (<account>.dkr.ecr.<region>.amazonaws.com), so give auth: { ecr: { region: "<region>" } }.`;
  }
  if (ecr !== undefined && region !== undefined && region !== ecr.region) {
    return `auth.ecr.region is "${region}" but registry ${host} is in ${ecr.region}, and ECR tokens work only in their region: leave the region out (auth: { ecr: true }).`;
  }
  return undefined;
}

/** `auth` in the words messages use, never with a secret: `the password in $REGISTRY_PASSWORD for user "ci"`. */
export function describeDockerAuth(registry: string, auth: DockerAuthOptions | undefined): string {
  const ecr = ecrTarget(registry, auth);
  if (ecr !== undefined) {
    return `an ECR token (GetAuthorizationToken in ${ecr.region} with this process's AWS credentials)`;
  }
  if (auth === undefined || auth === "anonymous") return "no credentials (anonymous)";
  if ("ecr" in auth) return "an ECR token (GetAuthorizationToken, in no region known)";
  if ("tokenEnv" in auth) return `the bearer token in $${auth.tokenEnv}`;
  if ("passwordEnv" in auth) {
    const user =
      auth.username !== undefined ? `user ${JSON.stringify(auth.username)}` : `the user in $${auth.usernameEnv}`;
    return `the password in $${auth.passwordEnv} for ${user}`;
  }
  return "no credentials (anonymous)";
}

/** Where ECR's token comes from for this registry and auth, or undefined when auth is not ECR's. */
export function ecrTarget(
  registry: string,
  auth: DockerAuthOptions | undefined,
): { region: string; account?: string; fips: boolean; dualStack: boolean } | undefined {
  const ecr = ecrRegistryOf(registry);
  if (auth === undefined) return ecr;
  if (typeof auth !== "object" || !("ecr" in auth)) return undefined;
  const region = (auth.ecr === true ? undefined : auth.ecr.region) ?? ecr?.region;
  if (region === undefined) return undefined;
  return ecr === undefined ? { region, fips: false, dualStack: false } : { ...ecr, region };
}

/** How a value is named in a message, without repeating anything that could be a secret. */
function kindOf(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return "a string";
  return `${/^[aeiou]/.test(typeof value) ? "an" : "a"} ${typeof value}`;
}

/** A key or short value quoted in a message when it cannot be a secret, else words saying it is not shown. */
function shown(value: string): string {
  return /^[A-Za-z0-9._-]{1,40}$/.test(value) && !looksLikeSecret(value)
    ? JSON.stringify(value)
    : "(a value not shown here in case it is a secret)";
}
