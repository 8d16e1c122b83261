import { createHmac, timingSafeEqual } from "node:crypto";

/** The request header carrying the signature. */
export const SIGNATURE_HEADER = "x-tern-signature";

type Headers = Readonly<Record<string, string | undefined>>;
type Body = string | Uint8Array;

/** The content type and the `ce-*` headers (lowercased names, sorted, values trimmed): what is signed besides the body. */
function signedHeaders(headers: Headers): { contentType: string; ce: Array<readonly [string, string]> } {
  const lower = Object.entries(headers)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => [name.toLowerCase(), value.trim()] as const);
  const contentType = lower.find(([name]) => name === "content-type")?.[1] ?? "";
  const ce = lower.filter(([name]) => name.startsWith("ce-")).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { contentType, ce };
}

/** One length-prefixed field: `<UTF-8 byte length>:<bytes>`. */
function field(value: Body): Buffer {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value);
  return Buffer.concat([Buffer.from(`${bytes.byteLength}:`, "ascii"), bytes]);
}

/**
 * What a `v2` signature covers, every part length-prefixed (`<byte length>:<bytes>`), so no
 * header value or body can be read as another part: `tern-v2`, the timestamp, the content type,
 * the number of `ce-*` headers, each header's name then value (lowercased names, sorted, values
 * trimmed), then the raw body. In binary mode the event's attributes travel in `ce-*` headers and
 * the content type decides how the body is read: all are signed, so a captured request cannot be
 * replayed with another id, type or source.
 */
export function signedBytesV2(timestampSeconds: number | string, headers: Headers, body: Body): Buffer {
  const { contentType, ce } = signedHeaders(headers);
  return Buffer.concat([
    field("tern-v2"),
    field(String(timestampSeconds)),
    field(contentType),
    field(String(ce.length)),
    ...ce.flatMap(([name, value]) => [field(name), field(value)]),
    field(body),
  ]);
}

/**
 * The text a legacy `v1` signature covers, before the body: the scheme, the timestamp, the
 * content type and every `ce-*` header (`name:value`), separated by newlines. A newline inside
 * a value could shift a part into the next, so v1 is accepted only for one key rotation (see
 * {@link checkSignature}); sign with v2.
 */
export function signedText(timestampSeconds: number | string, headers: Headers): string {
  const { contentType, ce } = signedHeaders(headers);
  return ["tern-v1", String(timestampSeconds), contentType, ...ce.map(([n, v]) => `${n}:${v}`), ""].join("\n");
}

/** The HMAC-SHA256 of each signature version, over what that version covers. */
const macs = {
  v2: (key: string, t: number | string, headers: Headers, body: Body): Buffer =>
    createHmac("sha256", key)
      .update(signedBytesV2(t, headers, body))
      .digest(),
  v1: (key: string, t: number | string, headers: Headers, body: Body): Buffer =>
    createHmac("sha256", key).update(signedText(t, headers)).update(body).digest(),
} as const;

/** Makes a request's signature header: `t=<unix seconds>,<version>=<hex MAC>` (now, unless given a timestamp). */
export type Signer = (key: string, headers: Headers, body: Body, timestampSeconds?: number) => string;

const signer =
  (version: keyof typeof macs): Signer =>
  (key, headers, body, timestampSeconds = Math.floor(Date.now() / 1000)) =>
    `t=${timestampSeconds},${version}=${macs[version](key, timestampSeconds, headers, body).toString("hex")}`;

/**
 * The `X-Tern-Signature` value for a request: `t=<unix seconds>,v2=<hex HMAC-SHA256>` over
 * {@link signedBytesV2}. The timestamp is signed, so it cannot be moved forward.
 */
export const signRequest: Signer = signer("v2");

/** The legacy `t=<unix seconds>,v1=<hex>` header (what senders made before v2); for tests and migrations. */
export const signRequestV1: Signer = signer("v1");

/** A signing key, and whether it still accepts the legacy v1 format. */
export interface SigningKey {
  readonly key: string;
  /** true for the key set before v2 existed (a plain-string secret) and a rotation's `previous` key. */
  readonly acceptsV1: boolean;
}

/** Why a signature was refused: `mismatch` is the one a newer key could fix. */
export type SignatureRefusal = {
  readonly kind: "missing" | "malformed" | "mismatch" | "stale";
  readonly reason: string;
};

/**
 * Checks a request's signature against each key (the current one and, while rotating, the
 * previous one); MACs compare in constant time. A `v2` part is checked when present; a request
 * with only `v1` is checked against the keys that still accept v1. Resolves undefined when good.
 */
export function verifySignature(
  keys: readonly (string | SigningKey)[],
  headers: Headers,
  body: Uint8Array,
  toleranceSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): SignatureRefusal | undefined {
  const header = Object.entries(headers).find(([name]) => name.toLowerCase() === SIGNATURE_HEADER)?.[1];
  if (header === undefined || header === "") return { kind: "missing", reason: `missing ${SIGNATURE_HEADER} header` };
  const parts = new Map(
    header.split(",").map((part) => {
      const at = part.indexOf("=");
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
    }),
  );
  const t = parts.get("t");
  const v2 = parts.get("v2");
  const v1 = parts.get("v1");
  const hex = /^[0-9a-f]{64}$/;
  const given = v2 ?? v1;
  if (t === undefined || !/^\d{1,12}$/.test(t) || given === undefined || !hex.test(given)) {
    return {
      kind: "malformed",
      reason: `malformed ${SIGNATURE_HEADER} header: expected t=<unix seconds>,v2=<64 hex digits>`,
    };
  }
  const signingKeys = keys.map((k) => (typeof k === "string" ? { key: k, acceptsV1: true } : k));
  const expected = Buffer.from(given, "hex");
  const version = v2 !== undefined ? "v2" : "v1";
  const matches = signingKeys.some(
    ({ key, acceptsV1 }) =>
      (version === "v2" || acceptsV1) && timingSafeEqual(macs[version](key, t, headers, body), expected),
  );
  if (!matches) {
    return {
      kind: "mismatch",
      reason:
        v2 !== undefined
          ? "the signature does not match the request (its content type, ce-* headers and body)"
          : "the v1 signature does not match the request, or its key no longer accepts v1 (sign with v2: see the README)",
    };
  }
  // Checked after the MAC, so a timestamp is only trusted once it is known to be signed.
  const skew = Math.abs(nowSeconds - Number(t));
  if (skew > toleranceSeconds) {
    return {
      kind: "stale",
      reason: `the signature's timestamp is ${skew} s from now (tolerance ${toleranceSeconds} s): a replay, or a clock to fix`,
    };
  }
  return undefined;
}

/** Why a request's signature is refused, or undefined when it is good (see {@link verifySignature}). */
export function checkSignature(...args: Parameters<typeof verifySignature>): string | undefined {
  return verifySignature(...args)?.reason;
}
