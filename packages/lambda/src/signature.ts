import { createHmac, timingSafeEqual } from "node:crypto";

/** The request header carrying the signature. */
export const SIGNATURE_HEADER = "x-tern-signature";

/**
 * What is signed: the scheme, the timestamp, the content type, every `ce-*` header (lowercased
 * names, sorted, `name:value`), then the raw body, separated by newlines. In binary mode the
 * event's attributes travel in `ce-*` headers, and the content type decides how the body is read:
 * both are signed, so a captured request cannot be replayed with another id, type or source.
 */
export function signedText(
  timestampSeconds: number | string,
  headers: Readonly<Record<string, string | undefined>>,
): string {
  const lower = Object.entries(headers)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => [name.toLowerCase(), value.trim()] as const);
  const contentType = lower.find(([name]) => name === "content-type")?.[1] ?? "";
  const ce = lower
    .filter(([name]) => name.startsWith("ce-"))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}:${value}`);
  return ["tern-v1", String(timestampSeconds), contentType, ...ce, ""].join("\n");
}

function mac(
  key: string,
  timestampSeconds: number | string,
  headers: Readonly<Record<string, string | undefined>>,
  body: string | Uint8Array,
): Buffer {
  return createHmac("sha256", key).update(signedText(timestampSeconds, headers)).update(body).digest();
}

/**
 * The `X-Tern-Signature` value for a request: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over
 * {@link signedText} and the body. The timestamp is signed, so it cannot be moved forward.
 */
export function signRequest(
  key: string,
  headers: Readonly<Record<string, string | undefined>>,
  body: string | Uint8Array,
  timestampSeconds = Math.floor(Date.now() / 1000),
): string {
  return `t=${timestampSeconds},v1=${mac(key, timestampSeconds, headers, body).toString("hex")}`;
}

/**
 * Why a request's signature is refused, or undefined when it is good. Each key given is tried
 * (the current one and, while rotating, the previous one); MACs compare in constant time.
 */
export function checkSignature(
  keys: readonly string[],
  headers: Readonly<Record<string, string | undefined>>,
  body: Uint8Array,
  toleranceSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): string | undefined {
  const header = Object.entries(headers).find(([name]) => name.toLowerCase() === SIGNATURE_HEADER)?.[1];
  if (header === undefined || header === "") return `missing ${SIGNATURE_HEADER} header`;
  const parts = new Map(
    header.split(",").map((part) => {
      const at = part.indexOf("=");
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
    }),
  );
  const t = parts.get("t");
  const v1 = parts.get("v1");
  if (t === undefined || !/^\d{1,12}$/.test(t) || v1 === undefined || !/^[0-9a-f]{64}$/.test(v1)) {
    return `malformed ${SIGNATURE_HEADER} header: expected t=<unix seconds>,v1=<64 hex digits>`;
  }
  const given = Buffer.from(v1, "hex");
  const matches = keys.some((key) => timingSafeEqual(mac(key, t, headers, body), given));
  if (!matches) return "the signature does not match the request (its content type, ce-* headers and body)";
  // Checked after the MAC, so a timestamp is only trusted once it is known to be signed.
  if (Math.abs(nowSeconds - Number(t)) > toleranceSeconds) {
    return `the signature's timestamp is ${Math.abs(nowSeconds - Number(t))} s from now (tolerance ${toleranceSeconds} s): a replay, or a clock to fix`;
  }
  return undefined;
}
