/** Where a registry's API is: `https://<host>/v2/`, or plain HTTP for a registry on this machine only. */
import { RegistryError } from "../errors.js";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * The base URL of a registry named as image references name it (`host[:port]`, for example
 * `ghcr.io` or `127.0.0.1:5000`). A `http://` or `https://` prefix is accepted; `http://` only for
 * a loopback host, and a loopback host without a scheme is reached over plain HTTP.
 */
export function registryBaseUrl(registry: string): URL {
  const given = /^https?:\/\//.test(registry) ? registry : undefined;
  const text = given ?? `https://${registry}`;
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (
    url === undefined ||
    url.host === "" ||
    (url.pathname !== "/" && url.pathname !== "") ||
    url.search !== "" ||
    url.hash !== "" ||
    url.username !== "" ||
    url.password !== ""
  ) {
    throw new RegistryError(
      "STORAGE_OPTIONS",
      `Registry ${JSON.stringify(redact(registry))} is not a registry host: give host[:port] as image references name it (for example ghcr.io or 127.0.0.1:5000), with no path, query or credentials.`,
      { registry: redact(registry) },
    );
  }
  const loopback = LOOPBACK.has(url.hostname);
  if (url.protocol === "http:" && !loopback) {
    throw new RegistryError(
      "STORAGE_OPTIONS",
      `Registry ${url.host} is given with http://; plain HTTP is only for a registry on this machine (localhost, 127.0.0.1, [::1]). Use https:// or the bare host.`,
      { registry: url.host },
    );
  }
  if (given === undefined && loopback) url.protocol = "http:";
  return new URL(`${url.protocol}//${url.host}/`);
}

/** A registry string without any user info, for messages. */
function redact(registry: string): string {
  return registry.replace(/\/\/[^/@]*@/, "//***@").replace(/^[^/@]*@/, "***@");
}
