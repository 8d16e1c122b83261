/**
 * The secret scan: plain values that look like credentials. Options are stored in the task
 * definition and the flow's manifest for anyone to read, so credentials found in them are refused
 * with a pointer to `secrets` (Secrets Manager or SSM).
 */

/** Names that are credentials whatever their value (matched as `_`-separated segments). */
const SECRET_NAMES =
  /(^|_)(SECRETS?|PASSWORDS?|PASSWD|PASS|PWD|(PRIVATE|API|ACCESS|SECRET|SIGNING|ENCRYPTION|MASTER|AUTH|CLIENT)_?KEY|APIKEY|SESSION_TOKEN|AUTH_TOKEN|TOKEN|CREDENTIALS?)(_|$)/i;
/** An AWS access key id. */
const ACCESS_KEY_ID = /\b(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/;
/** The shape of an AWS secret access key: 40 base64 characters, mixed case and digits. */
const SECRET_ACCESS_KEY = /(^|[^A-Za-z0-9/+=])[A-Za-z0-9/+]{40}($|[^A-Za-z0-9/+=])/;
/** A URL with a password in it: scheme://user:password@host */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i;
/** Well-known token formats and private keys. */
const KNOWN_TOKENS: ReadonlyArray<readonly [RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key"],
  [/\b(sk|rk)_(live|test)_[A-Za-z0-9]{10,}/, "a Stripe key"],
  [/\bgh[pousr]_[A-Za-z0-9]{30,}/, "a GitHub token"],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/, "a Slack token"],
  [/hooks\.slack\.com\/services\//, "a Slack webhook URL"],
  [/\bAIza[0-9A-Za-z_-]{35}\b/, "a Google API key"],
  [/\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./, "a JSON Web Token"],
];

/** Why a string looks like a credential, whatever its name, or undefined. */
export function secretLookingValue(value: string): string | undefined {
  if (ACCESS_KEY_ID.test(value)) return "it contains an AWS access key id";
  for (const [pattern, what] of KNOWN_TOKENS) if (pattern.test(value)) return `it looks like ${what}`;
  if (URL_WITH_PASSWORD.test(value)) return "it is a URL with a password in it";
  const match = SECRET_ACCESS_KEY.exec(value);
  if (match !== null) {
    const candidate = match[0].replace(/^[^A-Za-z0-9/+]|[^A-Za-z0-9/+]$/g, "");
    if (/[a-z]/.test(candidate) && /[A-Z]/.test(candidate) && /\d/.test(candidate)) {
      return "it looks like an AWS secret access key";
    }
  }
  return undefined;
}

/** Why an environment variable looks like a credential, or undefined. */
export function secretLooking(name: string, value: string): string | undefined {
  if (SECRET_NAMES.test(name) && value !== "") return `its name ${JSON.stringify(name)} says it holds a credential`;
  const why = secretLookingValue(value);
  return why === undefined ? undefined : `its value: ${why}`;
}

/** The first string inside a JSON value that looks like a credential, with its path from `value`. */
export function findSecretLooking(
  value: unknown,
  path: readonly (string | number)[] = [],
): { readonly path: readonly (string | number)[]; readonly why: string } | undefined {
  if (typeof value === "string") {
    const why = secretLookingValue(value);
    return why === undefined ? undefined : { path, why };
  }
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((inner, i) => [i, inner])
    : typeof value === "object" && value !== null
      ? Object.entries(value)
      : [];
  for (const [key, inner] of entries) {
    const found = findSecretLooking(inner, [...path, key]);
    if (found !== undefined) return found;
  }
  return undefined;
}
