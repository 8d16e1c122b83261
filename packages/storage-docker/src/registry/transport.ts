/**
 * One registry's HTTP requests: the base URL (https, or plain HTTP on loopback), the
 * `Authorization` header for the request's scopes, and one retry after a 401 that carries a
 * challenge the client can answer. Bodies are byte arrays, so a retried request sends them again.
 */
import { type RegistryErrorContext, requestError, responseError } from "../errors.js";
import { Authenticator, describeAuth, type RegistryAuth } from "./auth.js";
import { parseChallenge } from "./challenge.js";
import { registryBaseUrl } from "./endpoint.js";

export interface RegistryTransportOptions {
  /** The registry as image references name it: `ghcr.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** @default - anonymous */
  readonly auth?: RegistryAuth;
  /** How long one request may take, answer included. @default 120_000 */
  readonly timeoutMs?: number;
}

/** What one request is: its words for messages, where it goes and which token scopes it needs. */
export interface RegistryRequest {
  /** For messages: `push manifest latest`. */
  readonly what: string;
  readonly repository?: string;
  /** `repository:<name>:pull` and the like; none for `/v2/`. */
  readonly scopes: readonly string[];
  readonly method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** A path below the registry (`/v2/...`), or an absolute URL (an upload's `Location`). */
  readonly url: string | URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Statuses returned to the caller; any other fails with a `RegistryError`. @default - 2xx */
  readonly accept?: readonly number[];
}

export class RegistryTransport {
  /** `https://ghcr.io/` or `http://127.0.0.1:5000/`. */
  readonly baseUrl: URL;
  readonly registry: string;
  readonly #auth: RegistryAuth | undefined;
  readonly #timeoutMs: number;
  readonly #authenticator: Authenticator;

  constructor(options: RegistryTransportOptions) {
    this.baseUrl = registryBaseUrl(options.registry);
    this.registry = this.baseUrl.host;
    this.#auth = options.auth;
    this.#timeoutMs = options.timeoutMs ?? 120_000;
    this.#authenticator = new Authenticator(options.auth, this.context(), this.#timeoutMs);
  }

  /** What messages say about a request to `repository`. */
  context(repository?: string): RegistryErrorContext {
    return { registry: this.registry, repository, auth: describeAuth(this.#auth) };
  }

  /** Sends the request (answering one challenge) and returns the response, whose body is the caller's to read. */
  async send(request: RegistryRequest): Promise<Response> {
    const url = new URL(request.url, this.baseUrl);
    // Credentials go only to the registry itself, never to another origin an upload's Location names.
    const ours = url.origin === this.baseUrl.origin;
    let authorization = ours ? this.#authenticator.cached(request.scopes) : undefined;
    let response = await this.#fetch(request, url, authorization);
    const challenge = parseChallenge(response.headers.get("www-authenticate"));
    if (response.status === 401 && ours && challenge !== undefined) {
      const answer = await this.#authenticator.answer(challenge, request.scopes);
      if (answer !== undefined && answer !== authorization) {
        await response.body?.cancel();
        authorization = answer;
        response = await this.#fetch(request, url, authorization);
      }
    }
    const accepted = request.accept?.includes(response.status) ?? response.ok;
    if (!accepted) throw await responseError(response, request.what, this.context(request.repository));
    return response;
  }

  async #fetch(request: RegistryRequest, url: URL, authorization: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { ...request.headers };
    if (authorization !== undefined) headers.Authorization = authorization;
    try {
      return await fetch(url, {
        method: request.method,
        headers,
        body: request.body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw requestError(error, request.what, this.context(request.repository));
    }
  }
}

/** The token scope for `actions` on one repository: `repository:flows/etl:pull,push`. */
export function repositoryScope(repository: string, actions: "pull" | "pull,push"): string {
  return `repository:${repository}:${actions}`;
}
