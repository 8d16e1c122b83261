import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BlobConflictError, type BlobStore, sha256Hex } from "../storage/blob-store.js";
import { type ContractOptions, contractSuite } from "./contract-suite.js";

/** Options of {@link blobStoreContract}. */
export interface BlobStoreContractOptions extends ContractOptions {
  /**
   * Whether the server makes create-if-absent atomic (S3 `If-None-Match`, GCS
   * `ifGenerationMatch: 0`, Azure `ifNoneMatch: "*"`). Emulators that ignore those conditions
   * (s3rver, the Cloud Storage emulator) set `false`: the two concurrent-writer tests are then
   * not declared, and the driver must check the request shape against an SDK mock instead.
   * @default true
   */
  readonly atomicCreate?: boolean;
}

const INVALID_KEYS: readonly string[] = ["", "/abs", "a/../b", "a//b", "a\\b", "./a", "a/", "a/./b"];

/**
 * Declares the conformance suite every {@link BlobStore} driver must pass, as a vitest `describe`
 * block. `open` is called before each test and returns a ready store. Each test writes only under
 * its own random key prefix and never assumes the store starts empty, so one bucket or emulator
 * can be shared by every test (and by other runs); what a test wrote is deleted after it.
 *
 * @example
 * import { blobStoreContract } from "@tern/core/testing";
 *
 * blobStoreContract("S3BlobStore", () => new S3BlobStore({ bucket: "tern-test", clientConfig }), { timeoutMs: 30_000 });
 */
export function blobStoreContract(
  name: string,
  open: () => Promise<BlobStore> | BlobStore,
  options: BlobStoreContractOptions = {},
): void {
  contractSuite(`BlobStore contract: ${name}`, options, { open, close: removeWritten }, (opened) => {
    const store = (): BlobStore => opened().subject;
    const prefix = (): string => opened().scope;
    const key = (path: string): string => `${prefix()}/${path}`;
    const put = (k: string, body: Uint8Array) => store().put(k, body, { sha256: sha256Hex(body) });

    describe("put and get", () => {
      it("returns exactly the bytes that were put", async () => {
        const body = new Uint8Array(randomBytes(4096));
        body[0] = 0; // a leading NUL byte must survive
        body[1] = 0xff;
        await put(key("bytes.bin"), body);
        const read = await store().get(key("bytes.bin"));
        expect(read).toBeInstanceOf(Uint8Array);
        expect(Buffer.from(read).equals(Buffer.from(body))).toBe(true);
      });

      it("round-trips an empty body", async () => {
        expect(await put(key("empty"), new Uint8Array(0))).toBe("created");
        expect((await store().get(key("empty"))).byteLength).toBe(0);
        expect(await store().head(key("empty"))).toEqual({ sizeBytes: 0 });
      });

      it("round-trips a 5 MB body", async () => {
        const body = new Uint8Array(randomBytes(5 * 1024 * 1024));
        await put(key("large.bin"), body);
        const read = await store().get(key("large.bin"));
        expect(read.byteLength).toBe(body.byteLength);
        expect(sha256Hex(read)).toBe(sha256Hex(body));
      });

      it("round-trips a 50 MB bundle, the largest tern supports", async () => {
        const body = new Uint8Array(50 * 1024 * 1024);
        // Random bytes only at the edges and in the middle: enough to catch a short or shifted read.
        body.set(randomBytes(4096), 0);
        body.set(randomBytes(4096), body.byteLength / 2);
        body.set(randomBytes(4096), body.byteLength - 4096);
        await put(key("bundle-50mb.mjs"), body);
        expect(await store().head(key("bundle-50mb.mjs"))).toEqual({ sizeBytes: body.byteLength });
        const read = await store().get(key("bundle-50mb.mjs"));
        expect(read.byteLength).toBe(body.byteLength);
        expect(sha256Hex(read)).toBe(sha256Hex(body));
      });

      it("returns created for a new key, then exists for the same bytes", async () => {
        const body = new TextEncoder().encode("hello");
        expect(await put(key("same"), body)).toBe("created");
        expect(await put(key("same"), body)).toBe("exists");
        expect(await put(key("same"), Uint8Array.from(body))).toBe("exists");
        expect(new TextDecoder().decode(await store().get(key("same")))).toBe("hello");
      });

      it("accepts a content type", async () => {
        const body = new TextEncoder().encode('{"a":1}');
        expect(
          await store().put(key("doc.json"), body, { sha256: sha256Hex(body), contentType: "application/json" }),
        ).toBe("created");
        expect(new TextDecoder().decode(await store().get(key("doc.json")))).toBe('{"a":1}');
      });

      it("keeps its own copy: changing the buffers passed to put or returned by get changes nothing stored", async () => {
        const body = new TextEncoder().encode("original");
        await put(key("copy"), body);
        body.fill(0x21);
        const first = await store().get(key("copy"));
        expect(new TextDecoder().decode(first)).toBe("original");
        first.fill(0x21);
        expect(new TextDecoder().decode(await store().get(key("copy")))).toBe("original");
      });

      it("rejects other bytes under an existing key with a BlobConflictError naming the object, and keeps the stored bytes", async () => {
        const k = key("immutable.txt");
        await put(k, new TextEncoder().encode("first"));
        const attempt = put(k, new TextEncoder().encode("second"));
        await expect(attempt).rejects.toThrow(BlobConflictError);
        await expect(attempt).rejects.toMatchObject({ code: "BLOB_CONFLICT", url: store().describe(k) });
        await expect(attempt).rejects.toThrow(k);
        expect(new TextDecoder().decode(await store().get(k))).toBe("first");
        expect(await store().head(k)).toEqual({ sizeBytes: 5 });
      });

      it("rejects get of a missing key with a NotFoundError of kind blob naming the key", async () => {
        const k = key("missing");
        const attempt = store().get(k);
        await expect(attempt).rejects.toMatchObject({ name: "NotFoundError", code: "NOT_FOUND", kind: "blob", id: k });
        await expect(attempt).rejects.toThrow(k);
      });

      if (options.atomicCreate !== false) {
        it("gives each of 10 concurrent puts of the same bytes success, exactly one of them created", async () => {
          const body = new Uint8Array(randomBytes(64 * 1024));
          const outcomes = await Promise.all(Array.from({ length: 10 }, () => put(key("race"), body)));
          expect(outcomes.filter((o) => o === "created")).toHaveLength(1);
          expect(outcomes.filter((o) => o === "exists")).toHaveLength(9);
          expect(sha256Hex(await store().get(key("race")))).toBe(sha256Hex(body));
        });

        it("lets exactly one of concurrent puts of different bytes win, and stores the winner's bytes", async () => {
          const bodies = Array.from({ length: 5 }, (_, i) => new TextEncoder().encode(`writer ${i}`));
          const outcomes = await Promise.allSettled(bodies.map((body) => put(key("contended"), body)));
          const winners = outcomes.flatMap((o, i) => (o.status === "fulfilled" ? [i] : []));
          expect(winners).toHaveLength(1);
          expect(outcomes[winners[0]!]).toEqual({ status: "fulfilled", value: "created" });
          for (const outcome of outcomes) {
            if (outcome.status === "rejected") expect(outcome.reason).toBeInstanceOf(BlobConflictError);
          }
          expect(new TextDecoder().decode(await store().get(key("contended")))).toBe(`writer ${winners[0]}`);
        });
      }
    });

    describe("head", () => {
      it("returns the size in bytes of a stored object", async () => {
        await put(key("sized"), new Uint8Array(1234));
        expect(await store().head(key("sized"))).toEqual({ sizeBytes: 1234 });
      });

      it("returns undefined for a missing key", async () => {
        expect(await store().head(key("absent"))).toBeUndefined();
      });

      it("treats a key below an existing object as missing", async () => {
        await put(key("leaf"), new Uint8Array([1]));
        expect(await store().head(key("leaf/below"))).toBeUndefined();
        await expect(store().get(key("leaf/below"))).rejects.toMatchObject({ code: "NOT_FOUND", kind: "blob" });
        await expect(store().delete(key("leaf/below"))).resolves.toBeUndefined();
      });
    });

    describe("list", () => {
      it("returns the sorted keys under a prefix, nested ones included, and nothing else", async () => {
        const keys = ["z/last", "a/c", "a/bc/2", "ab", "a/b/1", "a/b/deep/er/3", "x.tmp"];
        for (const k of keys) await put(key(k), new TextEncoder().encode(k));
        expect(await store().list(`${prefix()}/`)).toEqual([...keys].sort().map(key));
        expect(await store().list(key("a/"))).toEqual([key("a/b/1"), key("a/b/deep/er/3"), key("a/bc/2"), key("a/c")]);
      });

      it("matches prefixes as plain strings, not as directories", async () => {
        for (const k of ["a/b/1", "a/bc/2", "a/c", "ab"]) await put(key(k), new Uint8Array([1]));
        expect(await store().list(key("a/b"))).toEqual([key("a/b/1"), key("a/bc/2")]);
        expect(await store().list(key("a/b/"))).toEqual([key("a/b/1")]);
        expect(await store().list(key("a"))).toEqual([key("a/b/1"), key("a/bc/2"), key("a/c"), key("ab")]);
        expect(await store().list(key("a/b/1"))).toEqual([key("a/b/1")]);
      });

      it("returns an empty list for a prefix nothing is stored under", async () => {
        await put(key("present"), new Uint8Array([1]));
        expect(await store().list(key("nothing/"))).toEqual([]);
        expect(await store().list(`${prefix()}-other/`)).toEqual([]);
      });

      it("includes keys from the whole store when the prefix is empty", async () => {
        await put(key("one"), new Uint8Array([1]));
        const all = await store().list("");
        expect(all).toContain(key("one"));
        expect(all).toEqual([...all].sort());
      });
    });

    describe("delete", () => {
      it("removes an object: get rejects, head and list no longer see it", async () => {
        await put(key("gone"), new Uint8Array([1, 2, 3]));
        await put(key("kept"), new Uint8Array([4]));
        await store().delete(key("gone"));
        expect(await store().head(key("gone"))).toBeUndefined();
        await expect(store().get(key("gone"))).rejects.toMatchObject({ code: "NOT_FOUND", kind: "blob" });
        expect(await store().list(`${prefix()}/`)).toEqual([key("kept")]);
      });

      it("resolves when the key does not exist", async () => {
        await expect(store().delete(key("never-written"))).resolves.toBeUndefined();
      });

      it("lets a deleted key be written again with other bytes", async () => {
        await put(key("reused"), new TextEncoder().encode("one"));
        await store().delete(key("reused"));
        expect(await put(key("reused"), new TextEncoder().encode("two"))).toBe("created");
        expect(new TextDecoder().decode(await store().get(key("reused")))).toBe("two");
      });
    });

    describe("keys", () => {
      for (const invalid of INVALID_KEYS) {
        it(`rejects the invalid key ${JSON.stringify(invalid)} with BLOB_KEY in put, get, head and delete`, async () => {
          const body = new Uint8Array([1]);
          const expected = { name: "TernError", code: "BLOB_KEY" };
          await expect(store().put(invalid, body, { sha256: sha256Hex(body) })).rejects.toMatchObject(expected);
          await expect(store().get(invalid)).rejects.toMatchObject(expected);
          await expect(store().head(invalid)).rejects.toMatchObject(expected);
          await expect(store().delete(invalid)).rejects.toMatchObject(expected);
        });
      }

      it("names the key in the message of an invalid key", async () => {
        await expect(store().get("a//b")).rejects.toThrow('"a//b"');
      });

      it("describes an object by a URL that contains its key and the store's URL", () => {
        const k = key("flows/etl/abc.mjs");
        const url = store().describe(k);
        expect(url).toContain(k);
        expect(url.startsWith(store().url)).toBe(true);
      });

      it("accepts keys with dots, dashes, underscores and spaces inside segments", async () => {
        const keys = ["v1.2/file-name_x.mjs", ".hidden", "with space/x", "..dots../y"];
        for (const k of keys) expect(await put(key(k), new TextEncoder().encode(k))).toBe("created");
        for (const k of keys) expect(new TextDecoder().decode(await store().get(key(k)))).toBe(k);
        expect(await store().list(`${prefix()}/`)).toEqual(keys.map(key).sort());
      });
    });
  });
}

/** Removes what a test wrote, best effort: a store shared between runs should not fill up with test objects. */
async function removeWritten(store: BlobStore, prefix: string): Promise<void> {
  const keys = await store.list(`${prefix}/`).catch(() => []);
  await Promise.all(keys.map((key) => store.delete(key).catch(() => undefined)));
}
