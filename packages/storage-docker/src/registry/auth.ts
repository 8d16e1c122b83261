/**
 * Credentials for a registry and the answers to its challenges: HTTP basic auth, or the Docker
 * registry token flow (a `Bearer` challenge names a token service; the client asks it for a token
 * for the repository scopes it needs, anonymously or with basic credentials, and caches it per
 * scope until it expires). See https://distribution.github.io/distribution/spec/auth/token/.
 */
import { RegistryError, type RegistryErrorContext, requestError, responseError, where } from "../errors.js";
import type { Challenge } from "./challenge.js";

/** How to authenticate to a registry. */
export type RegistryAuth =
  /** A username and password (or access token used as one): basic auth, or to obtain bearer tokens. */
  | { readonly username: string; readonly password: string }
  /** A bearer token obtained elsewhere, sent as it is (`Authorization: Bearer <token>`). */
  | { readonly token: string };

/** Describes `auth` for messages, never with its secret. */
export function describeAuth(auth: RegistryAuth | undefined): string | undefined {
  if (auth === undefined) return undefined;
  return "token" in auth ? "the bearer token given" : `the credentials of user ${JSON.stringify(auth.username)}`;
}

/** Tokens are reused until this long before they expire. */
const EXPIRY_MARGIN_MS = 10_000;
/** The token spec's default lifetime when the service gives none. */
const DEFAULT_EXPIRES_SECONDS = 60;

/** The `Authorization` headers of one client: what to send for a set of scopes, and how to answer a challenge. */
export class Authenticator {
  readonly #auth: RegistryAuth | undefined;
  readonly #context: RegistryErrorContext;
  readonly #timeoutMs: number;
  /** Bearer tokens by scope key; the basic header under "" once a Basic challenge was seen. */
  readonly #headers = new Map<string, { readonly value: string; readonly expiresAt: number }>();

  constructor(auth: RegistryAuth | undefined, context: RegistryErrorContext, timeoutMs: number) {
    this.#auth = auth;
    this.#context = context;
    this.#timeoutMs = timeoutMs;
  }

  /** The header already known for these scopes (sent before any challenge), or undefined. */
  cached(scopes: readonly string[]): string | undefined {
    if (this.#auth !== undefined && "token" in this.#auth) return `Bearer ${this.#auth.token}`;
    const entry = this.#headers.get(scopes.join(" ")) ?? this.#headers.get("");
    return entry !== undefined && entry.expiresAt > Date.now() ? entry.value : undefined;
  }

  /** The header that answers `challenge` for these scopes; undefined when no credentials could answer it. */
  async answer(challenge: Challenge, scopes: readonly string[]): Promise<string | undefined> {
    if (challenge.scheme === "basic") {
      if (this.#auth === undefined || "token" in this.#auth) return undefined;
      const value = basicHeader(this.#auth.username, this.#auth.password);
      this.#headers.set("", { value, expiresAt: Number.POSITIVE_INFINITY });
      return value;
    }
    if (challenge.scheme !== "bearer") {
      throw new RegistryError(
        "STORAGE_CREDENTIALS",
        `${where(this.#context)}: the registry asks for ${challenge.scheme} authentication, which tern does not speak (only Basic and Bearer).`,
        this.#context,
      );
    }
    if (this.#auth !== undefined && "token" in this.#auth) return undefined;
    const token = await this.#fetchToken(challenge, scopes);
    this.#headers.set(scopes.join(" "), { value: `Bearer ${token.value}`, expiresAt: token.expiresAt });
    return `Bearer ${token.value}`;
  }

  async #fetchToken(challenge: Challenge, scopes: readonly string[]): Promise<{ value: string; expiresAt: number }> {
    const realm = challenge.params.realm;
    if (realm === undefined || !URL.canParse(realm)) {
      throw new RegistryError(
        "STORAGE",
        `${where(this.#context)}: the registry's Bearer challenge names no token service (realm ${JSON.stringify(realm ?? "")}).`,
        this.#context,
      );
    }
    const url = new URL(realm);
    if (challenge.params.service !== undefined) url.searchParams.set("service", challenge.params.service);
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.#auth !== undefined && "username" in this.#auth) {
      headers.Authorization = basicHeader(this.#auth.username, this.#auth.password);
    }
    const what = `get a token from ${url.origin}${url.pathname}`;
    let response: Response;
    try {
      response = await fetch(url, { headers, signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (error) {
      throw requestError(error, what, this.#context);
    }
    if (!response.ok) throw await responseError(response, what, this.#context);
    const body = (await response.json().catch(() => ({}))) as {
      token?: unknown;
      access_token?: unknown;
      expires_in?: unknown;
    };
    // The spec names it `token`; OAuth2-style services send `access_token`.
    const value = typeof body.token === "string" ? body.token : body.access_token;
    if (typeof value !== "string" || value === "") {
      throw new RegistryError(
        "STORAGE",
        `${where(this.#context)}: cannot ${what}: its answer holds no token.`,
        this.#context,
      );
    }
    const seconds = typeof body.expires_in === "number" ? body.expires_in : DEFAULT_EXPIRES_SECONDS;
    return { value, expiresAt: Date.now() + seconds * 1000 - EXPIRY_MARGIN_MS };
  }
}

function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}
