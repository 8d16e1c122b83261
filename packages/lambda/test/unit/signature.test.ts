import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signedBytesV2, signRequest, signRequestV1, verifySignature } from "../../src/signature.js";
import { SigningKeys } from "../../src/signing-keys.js";

const key = "k".repeat(32);
const now = 1_800_000_000;

describe("the v2 signed encoding", () => {
  it("is length-prefixed, so a ce-* header value cannot stand in for the body or another header", () => {
    // In v1 (newline-joined), "ce-a: x\nce-b:y" with an empty body and "ce-a: x" with body "ce-b:y\n"
    // were the same text. In v2 they differ.
    const one = signedBytesV2(now, { "content-type": "text/plain", "ce-a": "x\nce-b:y" }, "");
    const two = signedBytesV2(now, { "content-type": "text/plain", "ce-a": "x" }, "ce-b:y\n");
    expect(one.equals(two)).toBe(false);
    expect(signedBytesV2(now, { "content-type": "a", "ce-id": "1" }, "b").toString("utf8")).toBe(
      `7:tern-v210:${now}1:a1:15:ce-id1:11:b`,
    );
    // Lengths are in bytes, not characters.
    expect(signedBytesV2(now, { "content-type": "é" }, "ü").toString("utf8")).toBe(`7:tern-v210:${now}2:é1:02:ü`);
  });

  it("is what a sender computes with a plain HMAC over those bytes (the README's recipe)", () => {
    const headers = { "content-type": "application/cloudevents+json" };
    const body = '{"id":"1"}';
    const mac = createHmac("sha256", key)
      .update(`7:tern-v2${String(now).length}:${now}28:application/cloudevents+json1:0${body.length}:${body}`)
      .digest("hex");
    expect(signRequest(key, headers, body, now)).toBe(`t=${now},v2=${mac}`);
  });
});

describe("verifySignature", () => {
  const headers = { "content-type": "application/json", "ce-id": "1", "ce-source": "/a", "ce-type": "t" };
  const body = Buffer.from('{"a":1}');
  const signed = (signature: string) => ({ ...headers, "x-tern-signature": signature });

  it("accepts the legacy v1 format only with keys that still accept it (the key set before v2, a rotation's previous key)", () => {
    const v1 = signRequestV1(key, headers, body, now);
    expect(verifySignature([{ key, acceptsV1: true }], signed(v1), body, 300, now)).toBeUndefined();
    expect(verifySignature([{ key, acceptsV1: false }], signed(v1), body, 300, now)).toMatchObject({
      kind: "mismatch",
      reason: expect.stringMatching(/no longer accepts v1 \(sign with v2/),
    });
    // v2 works with every key.
    const v2 = signRequest(key, headers, body, now);
    expect(verifySignature([{ key, acceptsV1: false }], signed(v2), body, 300, now)).toBeUndefined();
  });

  it("tells a mismatch (which a newer key could fix) from a missing, malformed or stale signature", () => {
    expect(verifySignature([key], headers, body, 300, now)?.kind).toBe("missing");
    expect(verifySignature([key], signed("t=1,v2=zz"), body, 300, now)?.kind).toBe("malformed");
    expect(verifySignature([key], signed(signRequest("o".repeat(32), headers, body, now)), body, 300, now)?.kind).toBe(
      "mismatch",
    );
    expect(verifySignature([key], signed(signRequest(key, headers, body, now - 600)), body, 300, now)?.kind).toBe(
      "stale",
    );
  });
});

describe("SigningKeys", () => {
  /** A source whose keys the test changes, counting reads; a clock the test moves. */
  function setup(first: string) {
    const state = { key: first, reads: 0, fail: false, nowMs: 0 };
    const source = async () => {
      state.reads += 1;
      if (state.fail) throw new Error("Secrets Manager: throttled");
      return [{ key: state.key, acceptsV1: false }];
    };
    return { state, source, now: () => state.nowMs };
  }

  it("asks its source (whose cache keeps the secret for its max age) on each use, but not for minIntervalMs after a failed read", async () => {
    const { state, source, now } = setup("a".repeat(32));
    const ring = await SigningKeys.load(source, { minIntervalMs: 10_000, now });
    state.key = "b".repeat(32);
    expect((await ring.current())[0]?.key).toBe("b".repeat(32));
    state.fail = true;
    expect((await ring.current())[0]?.key).toBe("b".repeat(32));
    state.nowMs = 9_999;
    expect((await ring.current())[0]?.key).toBe("b".repeat(32));
    expect(state.reads).toBe(3);
    state.fail = false;
    state.key = "c".repeat(32);
    state.nowMs = 10_000;
    expect((await ring.current())[0]?.key).toBe("c".repeat(32));
    expect(state.reads).toBe(4);
  });

  it("reads them at once after a mismatch, but not more often than minIntervalMs, however many requests come", async () => {
    const { state, source, now } = setup("a".repeat(32));
    const ring = await SigningKeys.load(source, { minIntervalMs: 10_000, now });
    state.key = "b".repeat(32);
    // Right after the cold start's read: the first mismatch reads again all the same.
    state.nowMs = 1;
    const concurrent = await Promise.all(Array.from({ length: 50 }, () => ring.afterMismatch()));
    expect(concurrent.every((keys) => keys?.[0]?.key === "b".repeat(32))).toBe(true);
    expect(state.reads).toBe(2);
    // A flood of bad signatures right after: no read until the interval has passed.
    state.nowMs = 10_000;
    for (let i = 0; i < 100; i++) expect(await ring.afterMismatch()).toBeUndefined();
    expect(state.reads).toBe(2);
    state.nowMs = 10_001;
    expect(await ring.afterMismatch()).toBeDefined();
    expect(state.reads).toBe(3);
  });

  it("keeps the keys it had when a read fails, and says so", async () => {
    const { state, source, now } = setup("a".repeat(32));
    const errors: unknown[] = [];
    const ring = await SigningKeys.load(source, { minIntervalMs: 1, now, onError: (e) => errors.push(e) });
    state.fail = true;
    state.nowMs = 5;
    expect((await ring.afterMismatch())?.[0]?.key).toBe("a".repeat(32));
    expect(errors).toEqual([expect.objectContaining({ message: "Secrets Manager: throttled" })]);
  });
});
