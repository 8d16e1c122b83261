import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { ApiError, File, Storage as GcsClient, type SaveOptions } from "@google-cloud/storage";
import { BlobConflictError, sha256Hex, storageFromJSON } from "@tern/core/plugin";
import { blobStoreContract } from "@tern/core/testing";
import { GCSStorage } from "@tern/storage-cloud/gcs";
import { type LocalServer, startGcsEmulator } from "@tern/test-support/servers";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

const BUCKET = "tern-flows";
const PROJECT = "tern-test";
let server: LocalServer;

beforeAll(async () => {
  server = await startGcsEmulator();
}, 60_000);
afterAll(() => server?.stop());

/** A custom endpoint makes the SDK skip authentication: no credentials are needed offline. */
function storageOptions() {
  return { apiEndpoint: server.endpoint, projectId: PROJECT };
}

blobStoreContract(
  "GCSBlobStore on the Cloud Storage emulator",
  () => new GCSStorage({ bucket: BUCKET, storageOptions: storageOptions() }).blobs,
  // The emulator ignores ifGenerationMatch: 0; the precondition is checked against the fake below.
  { atomicCreate: false, timeoutMs: 30_000 },
);

const text = (s: string) => new TextEncoder().encode(s);
const put = (storage: GCSStorage, key: string, body: Uint8Array, contentType?: string) =>
  storage.blobs.put(key, body, { sha256: sha256Hex(body), ...(contentType === undefined ? {} : { contentType }) });

describe("GCSStorage on the Cloud Storage emulator", () => {
  it("keeps credentials out of its JSON and rebuilds a working storage from it", async () => {
    const secrets = {
      client_email: "tern-ci@tern-test.iam.gserviceaccount.com",
      private_key: "-----BEGIN PRIVATE KEY-----\nTERN-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n",
    };
    const storage = new GCSStorage({
      bucket: BUCKET,
      prefix: "team/flows",
      storageOptions: { ...storageOptions(), credentials: secrets, keyFilename: "/secrets/tern-ci.json" },
    });
    const json = JSON.stringify(storage.toJSON());
    for (const leaked of [
      "private_key",
      "client_email",
      "TERN-SECRET",
      secrets.client_email,
      "credentials",
      "keyFilename",
      "/secrets/",
    ]) {
      expect(json).not.toContain(leaked);
    }
    expect(storage.toJSON()).toEqual({
      type: "GCSStorage",
      options: {
        prefix: "team/flows",
        bucket: BUCKET,
        projectId: PROJECT,
        storageOptions: { apiEndpoint: server.endpoint },
      },
    });

    const rebuilt = storageFromJSON(JSON.parse(json));
    expect(rebuilt).toBeInstanceOf(GCSStorage);
    expect(rebuilt.toJSON()).toEqual(storage.toJSON());
    const key = `team/flows/json-${Date.now()}/x.mjs`;
    expect(await put(storage, key, text("export {}"))).toBe("created");
    expect(new TextDecoder().decode(await rebuilt.blobs.get(key))).toBe("export {}");
    expect(await put(rebuilt as GCSStorage, key, text("export {}"))).toBe("exists");
    await rebuilt.blobs.delete(key);
    expect(await storage.blobs.head(key)).toBeUndefined();
  });

  it("compares an existing object by the md5Hash the emulator keeps, without downloading it", async () => {
    const storage = new GCSStorage({ bucket: BUCKET, storageOptions: storageOptions() });
    const key = `checksum-${Date.now()}/x.mjs`;
    const body = text("export const x = 1;");
    expect(await put(storage, key, body)).toBe("created");
    const downloads = vi.spyOn(File.prototype, "createReadStream");
    try {
      expect(await put(storage, key, body)).toBe("exists");
      expect(await storage.blobs.compareStored?.(key, body, sha256Hex(body))).toBe("same");
      const other = text("export const x = 2;");
      expect(await storage.blobs.compareStored?.(key, other, sha256Hex(other))).toBe("different");
      expect(downloads).not.toHaveBeenCalled();
      await storage.blobs.get(key); // the spy sees downloads
      expect(downloads).toHaveBeenCalledTimes(1);
    } finally {
      downloads.mockRestore();
    }
  });

  it("stores the given content type, and application/octet-stream rather than a guess from the key", async () => {
    const storage = new GCSStorage({ bucket: BUCKET, storageOptions: storageOptions() });
    const base = `content-type-${Date.now()}`;
    await put(storage, `${base}/bundle.mjs`, text("export {}"), "text/javascript");
    await put(storage, `${base}/manifest.json`, text("{}"));
    const raw = new GcsClient(storageOptions()).bucket(BUCKET);
    expect((await raw.file(`${base}/bundle.mjs`).getMetadata())[0].contentType).toBe("text/javascript");
    expect((await raw.file(`${base}/manifest.json`).getMetadata())[0].contentType).toBe("application/octet-stream");
  });

  it("lists more keys than fit in one page of the JSON API", async () => {
    const storage = new GCSStorage({ bucket: BUCKET, storageOptions: storageOptions() });
    const base = `paged-${Date.now()}/`;
    const keys = Array.from({ length: 1005 }, (_, i) => `${base}${String(i).padStart(4, "0")}`);
    const raw = new GcsClient(storageOptions()).bucket(BUCKET);
    // Written through the raw client, in parallel: 1005 puts through the driver would each look first.
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((k) => raw.file(k).save("x", { resumable: false })));
    }
    expect(await storage.blobs.list(base)).toEqual(keys);
    await raw.deleteFiles({ prefix: base });
  });
});

describe("GCSStorage credentials errors (real SDK and auth library, offline)", () => {
  const saved = { ...process.env };
  let scratch = "";
  afterEach(async () => {
    for (const name of ["GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "METADATA_SERVER_DETECTION"]) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    if (scratch !== "") await rm(scratch, { recursive: true, force: true });
  });

  it("names GOOGLE_APPLICATION_CREDENTIALS when it points at a missing file", async () => {
    scratch = await mkdtemp(join(tmpdir(), "tern-gcs-creds-"));
    const missing = join(scratch, "no-such-key.json");
    process.env.GOOGLE_APPLICATION_CREDENTIALS = missing;
    // The real endpoint: the auth library fails on the missing file before any request is sent.
    const storage = new GCSStorage({ bucket: BUCKET, projectId: PROJECT });
    const attempt = storage.blobs.get("flows/x.json");
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_CREDENTIALS" });
    await expect(attempt).rejects.toThrow(
      `GCS: no usable Google Cloud credentials for get gs://${BUCKET}/flows/x.json (The file at ${missing} does not exist`,
    );
    await expect(attempt).rejects.toThrow(`GOOGLE_APPLICATION_CREDENTIALS (${JSON.stringify(missing)})`);
  });

  it("says where the default chain looked when it finds no credentials at all", async () => {
    scratch = await mkdtemp(join(tmpdir(), "tern-gcs-creds-"));
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.CLOUDSDK_CONFIG = scratch; // no application_default_credentials.json there
    process.env.METADATA_SERVER_DETECTION = "none"; // not on GCE: skip probing 169.254.169.254
    // An endpoint that answers 401 as GCS does to anonymous callers, with auth turned on for it.
    const unauthorized: Server = createServer((_req, res) => {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ error: { code: 401, message: "Anonymous caller does not have storage.objects.get access." } }),
      );
    });
    await new Promise<void>((resolve) => unauthorized.listen(0, "127.0.0.1", resolve));
    try {
      const apiEndpoint = `http://127.0.0.1:${(unauthorized.address() as AddressInfo).port}`;
      const storage = new GCSStorage({
        bucket: BUCKET,
        projectId: PROJECT,
        storageOptions: { apiEndpoint, useAuthWithCustomEndpoint: true, retryOptions: { autoRetry: false } },
      });
      const where =
        /GOOGLE_APPLICATION_CREDENTIALS \(not set\), gcloud's application default credentials file \(.*application_default_credentials\.json, .*\), and the metadata server/;
      // Metadata requests surface the auth library's own error ...
      const head = storage.blobs.head("flows/x.json");
      await expect(head).rejects.toMatchObject({ code: "STORAGE_CREDENTIALS" });
      await expect(head).rejects.toThrow(/Could not load the default credentials/);
      await expect(head).rejects.toThrow(where);
      // ... downloads the service's 401.
      const get = storage.blobs.get("flows/x.json");
      await expect(get).rejects.toMatchObject({ code: "STORAGE_CREDENTIALS" });
      await expect(get).rejects.toThrow(where);
    } finally {
      await new Promise((resolve) => unauthorized.close(resolve));
    }
  });
});

function apiError(code: number, message: string, reason = "error"): ApiError {
  return Object.assign(new ApiError(message), { code, errors: [{ reason, message }] });
}

const notFound = (bucket: string, key: string) => apiError(404, `No such object: ${bucket}/${key}`, "notFound");

type Method = "save" | "getMetadata" | "createReadStream" | "getFiles" | "delete";

/**
 * Just enough of a `@google-cloud/storage` client: objects in a map, every `save` recorded,
 * `ifGenerationMatch: 0` honoured as GCS does (the emulator does not), and failures injectable.
 */
class FakeGcs {
  readonly objects = new Map<string, Buffer>();
  readonly saves: { bucket: string; key: string; body: Buffer; options: SaveOptions }[] = [];
  readonly fail: Partial<Record<Method, Error>> = {};
  /** Headers added to download responses. */
  responseHeaders: Record<string, string> = {};
  /** Runs between the driver's existence check and its write: a concurrent writer. */
  beforeSave: ((key: string) => void) | undefined;
  /** Whether metadata carries md5Hash, as GCS's does for every object not composed of others. */
  keepsMd5 = false;
  /** Downloads started. */
  reads = 0;

  bucket(bucket: string) {
    const failure = (method: Method) => this.fail[method];
    return {
      file: (key: string) => ({
        save: async (body: Buffer, options: SaveOptions) => {
          this.saves.push({ bucket, key, body: Buffer.from(body), options });
          this.beforeSave?.(key);
          const error = failure("save");
          if (error !== undefined) throw error;
          if (options.preconditionOpts?.ifGenerationMatch === 0 && this.objects.has(key)) {
            throw apiError(412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet");
          }
          this.objects.set(key, Buffer.from(body));
        },
        getMetadata: async () => {
          const error = failure("getMetadata");
          if (error !== undefined) throw error;
          const body = this.objects.get(key);
          if (body === undefined) throw notFound(bucket, key);
          const md5Hash = this.keepsMd5 ? createHash("md5").update(body).digest("base64") : undefined;
          return [{ name: key, size: String(body.byteLength), md5Hash }];
        },
        createReadStream: () => {
          this.reads += 1;
          const stream = new PassThrough();
          setImmediate(() => {
            const error = failure("createReadStream");
            const body = this.objects.get(key);
            if (error !== undefined) return stream.destroy(error);
            if (body === undefined) return stream.destroy(notFound(bucket, key));
            stream.emit("response", {
              headers: { "content-length": String(body.byteLength), ...this.responseHeaders },
            });
            stream.end(body);
          });
          return stream;
        },
        // Like the SDK, ignoreNotFound swallows every 404, "the bucket does not exist" included.
        delete: async (options: { ignoreNotFound?: boolean } = {}) => {
          const error = failure("delete") ?? (this.objects.delete(key) ? undefined : notFound(bucket, key));
          if (error !== undefined && !(options.ignoreNotFound === true && (error as ApiError).code === 404))
            throw error;
        },
      }),
      getFiles: async ({ prefix }: { prefix: string }) => {
        const error = failure("getFiles");
        if (error !== undefined) throw error;
        return [[...this.objects.keys()].filter((k) => k.startsWith(prefix)).map((name) => ({ name }))];
      },
    };
  }
}

describe("GCSBlobStore request shapes and errors (fake client)", () => {
  let fake: FakeGcs;
  const storage = (bucket = "bkt") =>
    new GCSStorage({ bucket, projectId: "tern-prod", storage: fake as unknown as GcsClient });

  beforeEach(() => {
    fake = new FakeGcs();
  });

  it("writes create-if-absent (ifGenerationMatch: 0), in one request, with an MD5 the service checks and the content type", async () => {
    const body = text("hello");
    expect(await put(storage(), "flows/etl/x.mjs", body, "text/javascript")).toBe("created");
    expect(fake.saves).toHaveLength(1);
    const [save] = fake.saves;
    expect(save?.bucket).toBe("bkt");
    expect(save?.key).toBe("flows/etl/x.mjs");
    expect(save?.body.toString()).toBe("hello");
    expect(save?.options).toMatchObject({
      resumable: false,
      validation: "md5",
      contentType: "text/javascript",
      metadata: { md5Hash: "XUFAKrxLKna5cZ2REBfFkg==" }, // MD5 of "hello", base64
      preconditionOpts: { ifGenerationMatch: 0 },
    });
    await put(storage(), "flows/etl/m.json", body);
    expect(fake.saves[1]?.options.contentType).toBe("application/octet-stream");
  });

  it("does not write again when the object is already there with the same bytes", async () => {
    const body = text("same");
    fake.objects.set("k", Buffer.from(body));
    expect(await put(storage(), "k", body)).toBe("exists");
    expect(fake.saves).toHaveLength(0);
    // Without an md5Hash (a composite object) the bytes are downloaded to compare.
    expect(fake.reads).toBe(1);
  });

  it("compares an existing object by the md5Hash GCS keeps, without downloading it", async () => {
    fake.keepsMd5 = true;
    const body = text("same");
    fake.objects.set("k", Buffer.from(body));
    expect(await put(storage(), "k", body)).toBe("exists");
    await expect(put(storage(), "k", text("diff"))).rejects.toBeInstanceOf(BlobConflictError);
    expect(await storage().blobs.compareStored?.("k", body, sha256Hex(body))).toBe("same");
    expect(await storage().blobs.compareStored?.("k", text("diff"), sha256Hex(text("diff")))).toBe("different");
    expect(await storage().blobs.compareStored?.("absent", body, sha256Hex(body))).toBe("absent");
    expect(fake.reads).toBe(0);
    expect(fake.saves).toHaveLength(0);
  });

  it("reports a body GCS received changed (its MD5 differs) as an integrity error that may pass", async () => {
    fake.fail.save = apiError(400, 'Provided MD5 hash "x" doesn\'t match calculated MD5 hash "y".', "invalid");
    await expect(put(storage(), "flows/x.json", text("x"))).rejects.toMatchObject({
      code: "STORAGE_INTEGRITY",
      retryable: true,
      message: expect.stringMatching(
        /^GCS put gs:\/\/bkt\/flows\/x\.json: the service received bytes whose MD5 differs/,
      ),
    });
  });

  it("treats 412 from a concurrent writer as exists for the same bytes and a conflict for others", async () => {
    const body = text("same");
    fake.beforeSave = (key) => fake.objects.set(key, Buffer.from("same"));
    expect(await put(storage(), "k", body)).toBe("exists");
    expect(fake.saves).toHaveLength(1);

    fake.objects.clear();
    const attempt = put(storage(), "k", text("other"));
    await expect(attempt).rejects.toBeInstanceOf(BlobConflictError);
    await expect(attempt).rejects.toThrow("gs://bkt/k already exists with different content");
    expect(fake.objects.get("k")?.toString()).toBe("same");
  });

  it("says how to create a missing bucket, naming it and the project", async () => {
    const missing = () => apiError(404, "The specified bucket does not exist.", "notFound");
    for (const method of ["save", "getMetadata", "getFiles", "delete"] as const) fake.fail[method] = missing();
    fake.fail.getMetadata = undefined; // the first existence check finds nothing, so put writes
    const store = storage("no-such-bucket").blobs;
    const message =
      /GCS bucket "no-such-bucket" does not exist \(project tern-prod\)\. Create it \(gcloud storage buckets create gs:\/\/no-such-bucket --project tern-prod\)/;
    await expect(put(storage("no-such-bucket"), "flows/x.json", text("x"))).rejects.toThrow(message);
    await expect(store.list("flows/")).rejects.toMatchObject({ code: "STORAGE_BUCKET" });
    await expect(store.delete("flows/x.json")).rejects.toThrow(message);
    fake.fail.getMetadata = missing();
    await expect(store.head("flows/x.json")).rejects.toThrow(message);
  });

  it.each([
    [
      "put",
      "save",
      403,
      /GCS denied storage\.objects\.create on gs:\/\/bkt\/flows\/x\.json \(.*does not have.*\)\. Grant it/,
    ],
    ["get", "createReadStream", 403, /GCS denied storage\.objects\.get on gs:\/\/bkt\/flows\/x\.json/],
    ["head", "getMetadata", 403, /GCS denied storage\.objects\.get on gs:\/\/bkt\/flows\/x\.json/],
    ["list", "getFiles", 403, /GCS denied storage\.objects\.list on gs:\/\/bkt \(/],
    ["delete", "delete", 403, /GCS denied storage\.objects\.delete on gs:\/\/bkt\/flows\/x\.json/],
    [
      "get",
      "createReadStream",
      503,
      /GCS get gs:\/\/bkt\/flows\/x\.json failed with 503 .*unavailable or throttling.*retries/,
    ],
    ["put", "save", 429, /GCS put gs:\/\/bkt\/flows\/x\.json failed with 429 .*unavailable or throttling/],
    ["list", "getFiles", 500, /GCS list gs:\/\/bkt \(prefix "flows\/x\.json"\) failed with 500/],
  ] as const)(
    "maps %s failing with %s %i to a message that says what to do",
    async (operation, method, status, message) => {
      fake.fail[method] = apiError(
        status,
        status === 403 ? "tern@tern-prod.iam.gserviceaccount.com does not have access." : "Backend Error",
      );
      const store = storage().blobs;
      const key = "flows/x.json";
      const attempt =
        operation === "put"
          ? put(storage(), key, text("x"))
          : operation === "list"
            ? store.list(key)
            : store[operation](key);
      await expect(attempt).rejects.toThrow(message);
      await expect(attempt).rejects.toMatchObject({
        code: status === 403 ? "STORAGE_ACCESS" : "STORAGE_UNAVAILABLE",
        retryable: status !== 403,
        cause: fake.fail[method],
      });
    },
  );

  it("maps a missing object to a NotFoundError of kind blob, and head and delete to absent", async () => {
    await expect(storage().blobs.get("flows/x.json")).rejects.toMatchObject({
      name: "NotFoundError",
      kind: "blob",
      id: "flows/x.json",
      message: "gs://bkt/flows/x.json does not exist.",
    });
    expect(await storage().blobs.head("flows/x.json")).toBeUndefined();
    await expect(storage().blobs.delete("flows/x.json")).resolves.toBeUndefined();
  });

  it("reads a download whose Content-Length is not the object's size (gzip transcoding)", async () => {
    fake.objects.set("k", Buffer.from("hello, hello"));
    fake.responseHeaders = { "content-encoding": "gzip", "content-length": "5" };
    expect(new TextDecoder().decode(await storage().blobs.get("k"))).toBe("hello, hello");
  });

  it("explains missing credentials reported by the SDK", async () => {
    fake.fail.getFiles = new Error(
      "Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.",
    );
    await expect(storage().blobs.list("flows/")).rejects.toMatchObject({
      code: "STORAGE_CREDENTIALS",
      message: expect.stringMatching(/GOOGLE_APPLICATION_CREDENTIALS .* the metadata server/),
    });
  });

  it("wraps other failures with the operation and URL, keeping the cause", async () => {
    const cause = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    fake.fail.getMetadata = cause;
    await expect(storage().blobs.head("flows/x.json")).rejects.toMatchObject({
      code: "STORAGE",
      message: "GCS head gs://bkt/flows/x.json failed: ECONNRESET socket hang up",
      cause,
    });
  });
});

describe("GCSStorage options", () => {
  it("rejects bad options, naming them", () => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid input.
    const make = (o: any) => () => new GCSStorage(o);
    expect(make({})).toThrow(/GCSStorage: option "bucket" is required/);
    expect(make({ bucket: "ok-bucket", buckt: "x" })).toThrow(/GCSStorage: unknown option "buckt"/);
    expect(make({ bucket: "Bad_Bucket" })).toThrow(/bucket "Bad_Bucket" is not a valid Cloud Storage bucket name/);
    expect(make({ bucket: "ab" })).toThrow(/bucket "ab" .* 3-63 characters/);
    expect(make({ bucket: "x".repeat(64) })).toThrow(/3-63 characters/);
    expect(make({ bucket: "my-google-flows" })).toThrow(/must not start with "goog" or contain "google"/);
    expect(make({ bucket: "192.168.5.4" })).toThrow(/IP address/);
    expect(make({ bucket: "ok-bucket", projectId: "My Project" })).toThrow(
      /projectId "My Project" is not a Google Cloud project ID/,
    );
    expect(make({ bucket: "ok-bucket", storage: {} })).toThrow(/storage must be a Storage client/);
    expect(make({ bucket: "ok-bucket", storage: new GcsClient(), storageOptions: {} })).toThrow(
      /either storage or storageOptions/,
    );
    expect(make({ bucket: "ok-bucket", storageOptions: "x" })).toThrow(/storageOptions must be an object/);
    expect(make({ bucket: "ok-bucket", projectid: "p" })).toThrow(
      /unknown option "projectid"\. Valid options: prefix, external, bucket, projectId, storage, storageOptions\./,
    );
    expect(make({ bucket: 7 })).toThrow(/GCSStorage: option "bucket" must be a string, not a number\./);
  });

  it("accepts valid names: dotted buckets, underscores, domain-scoped projects", () => {
    expect(new GCSStorage({ bucket: "flows.example.com" }).bucket).toBe("flows.example.com");
    expect(new GCSStorage({ bucket: "my_flows-1" }).bucket).toBe("my_flows-1");
    expect(new GCSStorage({ bucket: "b12", projectId: "example.com:my-project" }).projectId).toBe(
      "example.com:my-project",
    );
  });

  it("takes the project from storageOptions when projectId is not given, and keeps it in its JSON", () => {
    const storage = new GCSStorage({ bucket: "ok-bucket", storageOptions: { projectId: "from-options" } });
    expect(storage.projectId).toBe("from-options");
    expect(storage.toJSON().options).toEqual({ prefix: "flows", bucket: "ok-bucket", projectId: "from-options" });
  });
});

describe("GCSStorage endpoints", () => {
  it("rejects an apiEndpoint that carries a token, without repeating it", () => {
    let message = "";
    try {
      new GCSStorage({
        bucket: "tern-flows",
        storageOptions: { apiEndpoint: "https://storage.example.com/?access_token=ya29.secret" },
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/storageOptions\.apiEndpoint carries credentials or parameters/);
    expect(message).not.toContain("ya29.secret");
  });
});
