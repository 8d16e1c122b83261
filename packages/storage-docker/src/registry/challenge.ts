/** The `WWW-Authenticate` challenge of a registry's 401: its scheme and parameters (RFC 7235). */

export interface Challenge {
  /** `bearer` or `basic`, in lower case. */
  readonly scheme: string;
  /** `realm`, `service`, `scope`, ... with their quotes removed. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"`
 * or `Basic realm="registry"`; undefined for a missing or empty header. Only the first challenge of
 * the header is read: registries send one.
 */
export function parseChallenge(header: string | null | undefined): Challenge | undefined {
  const match =
    header === null || header === undefined ? null : /^\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+(.*))?$/s.exec(header);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  for (const param of (match[2] ?? "").matchAll(/([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[param[1]!.toLowerCase()] = param[2] === undefined ? (param[3] ?? "") : param[2].replace(/\\(.)/g, "$1");
  }
  return { scheme: match[1]!.toLowerCase(), params };
}
