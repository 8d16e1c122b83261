import { createHmac, timingSafeEqual } from "node:crypto";

/** The request header carrying the signature. */
export const SIGNATURE_HEADER = "x-tern-signature";

/**
 * Signs a request body: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. The timestamp
 * is inside the signed text, so it cannot be changed to replay an old request.
 */
export function signBody(
  key: string,
  body: string | Uint8Array,
  timestampSeconds = Math.floor(Date.now() / 1000),
): string {
  const mac = createHmac("sha256", key).update(`${timestampSeconds}.`).update(body).digest("hex");
  return `t=${timestampSeconds},v1=${mac}`;
}

/** Why a signature is refused, or undefined when it is good. Compares in constant time. */
export function checkSignature(
  key: string,
  header: string | undefined,
  body: Uint8Array,
  toleranceSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): string | undefined {
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
  const expected = createHmac("sha256", key).update(`${t}.`).update(body).digest();
  if (!timingSafeEqual(expected, Buffer.from(v1, "hex"))) return "the signature does not match the body";
  // Checked after the MAC, so a timestamp is only trusted once it is known to be signed.
  if (Math.abs(nowSeconds - Number(t)) > toleranceSeconds) {
    return `the signature's timestamp is ${Math.abs(nowSeconds - Number(t))} s from now (tolerance ${toleranceSeconds} s): a replay, or a clock to fix`;
  }
  return undefined;
}
