import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { BlobConflictError, sha256Hex, storageFromJSON } from "@tern/core/plugin";
import { blobStoreContract } from "@tern/core/testing";
import { S3BlobStore, S3Storage } from "@tern/storage-cloud/s3";
import { type LocalServer, S3RVER_CREDENTIALS, startS3rver } from "@tern/test-support/servers";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const BUCKET = "tern-flows";
let server: LocalServer;

beforeAll(async () => {
  server = await startS3rver([BUCKET]);
}, 60_000);
afterAll(() => server?.stop());

function clientConfig() {
  return { region: "us-east-1", endpoint: server.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS };
}

blobStoreContract(
  "S3BlobStore on s3rver",
  () => new S3Storage({ bucket: BUCKET, clientConfig: clientConfig(), conditionalWrites: false }).blobs,
  // s3rver ignores If-None-Match; the conditional write is checked against the SDK mock below.
  { atomicCreate: false, timeoutMs: 30_000 },
);

describe("S3Storage on s3rver", () => {
  it("says how to create a missing bucket", async () => {
    const store = new S3Storage({ bucket: "no-such-bucket", clientConfig: clientConfig(), conditionalWrites: false })
      .blobs;
    await expect(store.get("flows/x.json")).rejects.toThrow(
      /S3 bucket "no-such-bucket" does not exist in us-east-1\. Create it \(aws s3 mb s3:\/\/no-such-bucket --region us-east-1\)/,
    );
    await expect(
      store.put("flows/x.json", new Uint8Array([1]), { sha256: sha256Hex(new Uint8Array([1])) }),
    ).rejects.toThrow(/does not exist/);
  });

  it("keeps credentials out of its JSON and rebuilds from it", () => {
    const storage = new S3Storage({ bucket: BUCKET, prefix: "team/flows", clientConfig: clientConfig() });
    const json = JSON.stringify(storage.toJSON());
    expect(json).not.toContain(S3RVER_CREDENTIALS.secretAccessKey);
    expect(storage.toJSON()).toEqual({
      type: "S3Storage",
      options: {
        prefix: "team/flows",
        bucket: BUCKET,
        clientConfig: { endpoint: server.endpoint, forcePathStyle: true },
      },
    });
    const rebuilt = storageFromJSON(storage.toJSON());
    expect(rebuilt).toBeInstanceOf(S3Storage);
    expect(rebuilt.toJSON()).toEqual(storage.toJSON());
  });

  it("rejects bad options, naming them", () => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid input.
    const make = (o: any) => () => new S3Storage(o);
    expect(make({})).toThrow(/S3Storage: option "bucket" is required/);
    expect(make({ bucket: "Bad_Bucket" })).toThrow(/bucket "Bad_Bucket" is not a valid S3 bucket name/);
    expect(make({ bucket: "ok-bucket", buckt: "x" })).toThrow(/unknown option "buckt"/);
    expect(make({ bucket: "ok-bucket", kmsKeyId: "k" })).toThrow(/kmsKeyId needs serverSideEncryption "aws:kms"/);
    expect(make({ bucket: "ok-bucket", client: new S3Client({}), clientConfig: {} })).toThrow(
      /either client or clientConfig/,
    );
    expect(make({ bucket: "ok-bucket", buckt: "x" })).toThrow(
      /Valid options: prefix, external, bucket, region, client/,
    );
    expect(make({ bucket: "ok-bucket", conditionalWrites: "no" })).toThrow(
      /S3Storage: option "conditionalWrites" must be a boolean, not a string\./,
    );
    expect(make({ bucket: "ok-bucket", serverSideEncryption: "x" })).toThrow(
      /serverSideEncryption "x" is not one of AES256, aws:kms, aws:kms:dsse/,
    );
    expect(make("s3://bucket")).toThrow(/S3Storage: options must be an object with bucket\./);
  });
});

describe("S3BlobStore request shapes and errors (SDK mock)", () => {
  // A mock of one client instance only, so the s3rver tests above keep their real client.
  const client = new S3Client({ region: "eu-west-1", credentials: S3RVER_CREDENTIALS });
  const s3 = mockClient(client);
  afterEach(() => s3.reset());

  const store = () =>
    new S3BlobStore("bkt", {
      client,
      clientConfig: { region: "eu-west-1" },
      serverSideEncryption: "aws:kms",
      kmsKeyId: "alias/tern",
      conditionalWrites: true,
    });
  const notFound = () =>
    Object.assign(
      new S3ServiceException({ name: "NotFound", $fault: "client", $metadata: { httpStatusCode: 404 } }),
      {},
    );

  it("writes create-if-absent with a SHA-256 checksum and the encryption settings", async () => {
    s3.on(PutObjectCommand).resolves({});
    const body = new TextEncoder().encode("bundle");
    const sha = sha256Hex(body);
    expect(await store().put("flows/etl/x.mjs", body, { sha256: sha, contentType: "text/javascript" })).toBe("created");
    // S3 honours If-None-Match: no existence check before the write.
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
    const input = s3.commandCalls(PutObjectCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      Bucket: "bkt",
      Key: "flows/etl/x.mjs",
      IfNoneMatch: "*",
      ChecksumSHA256: Buffer.from(sha, "hex").toString("base64"),
      ContentType: "text/javascript",
      ServerSideEncryption: "aws:kms",
      SSEKMSKeyId: "alias/tern",
    });
  });

  it("treats 412 from a concurrent writer as exists for the same bytes and a conflict for others", async () => {
    const body = new TextEncoder().encode("same");
    s3.on(HeadObjectCommand).rejects(notFound());
    s3.on(PutObjectCommand).rejects(
      new S3ServiceException({ name: "PreconditionFailed", $fault: "client", $metadata: { httpStatusCode: 412 } }),
    );
    // A minimal streaming body, new for every call.
    const stream = async function* () {
      yield body;
    };
    s3.on(GetObjectCommand).callsFake(() => ({ Body: stream() as never, ContentLength: body.byteLength }));
    expect(await store().put("k", body, { sha256: sha256Hex(body) })).toBe("exists");
    const other = new TextEncoder().encode("other");
    await expect(store().put("k", other, { sha256: sha256Hex(other) })).rejects.toBeInstanceOf(BlobConflictError);
  });

  it.each([
    ["AccessDenied", 403, /S3 denied s3:GetObject on arn:aws:s3:::bkt\/flows\/x\.json/, false],
    ["NoSuchKey", 404, /s3:\/\/bkt\/flows\/x\.json does not exist/, false],
    [
      "ServiceUnavailable",
      503,
      /failed with 503 ServiceUnavailable after 3 attempts \(the service is throttling or unavailable\)/,
      true,
    ],
    ["SlowDown", 503, /throttling or unavailable/, true],
    ["InternalError", 500, /throttling or unavailable/, true],
    ["InvalidArgument", 400, /failed: InvalidArgument/, false],
  ])(
    "maps %s (%i) to a message that says what to do, and says whether it may pass",
    async (name, status, message, retryable) => {
      s3.on(GetObjectCommand).rejects(
        new S3ServiceException({
          name,
          $fault: status >= 500 ? "server" : "client",
          $metadata: { httpStatusCode: status, attempts: 3 },
        }),
      );
      await expect(store().get("flows/x.json")).rejects.toThrow(message);
      await expect(store().get("flows/x.json")).rejects.toMatchObject({ retryable });
    },
  );

  it("explains where the SDK looked when there are no credentials", async () => {
    s3.on(GetObjectCommand).rejects(
      Object.assign(new Error("Could not load credentials from any providers"), { name: "CredentialsProviderError" }),
    );
    await expect(store().get("flows/x.json")).rejects.toThrow(
      /no AWS credentials found .* AWS_ACCESS_KEY_ID.*ECS\/EC2 metadata/,
    );
  });

  it("deletes idempotently", async () => {
    s3.on(DeleteObjectCommand).resolves({});
    await expect(store().delete("k")).resolves.toBeUndefined();
  });

  const base64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");

  it("compares an existing object by the SHA-256 S3 keeps, without downloading it", async () => {
    const body = new TextEncoder().encode("same");
    s3.on(PutObjectCommand).rejects(
      new S3ServiceException({ name: "PreconditionFailed", $fault: "client", $metadata: { httpStatusCode: 412 } }),
    );
    s3.on(HeadObjectCommand).resolves({
      ContentLength: 4,
      ChecksumSHA256: base64(sha256Hex(body)),
      ChecksumType: "FULL_OBJECT",
    });
    expect(await store().put("k", body, { sha256: sha256Hex(body) })).toBe("exists");
    const other = new TextEncoder().encode("diff");
    await expect(store().put("k", other, { sha256: sha256Hex(other) })).rejects.toBeInstanceOf(BlobConflictError);
    expect(await store().compareStored("k", body, sha256Hex(body))).toBe("same");
    expect(await store().compareStored("k", other, sha256Hex(other))).toBe("different");
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    expect(s3.commandCalls(HeadObjectCommand)[0]?.args[0].input).toMatchObject({ ChecksumMode: "ENABLED" });
    expect(s3.commandCalls(PutObjectCommand)[0]?.args[0].input).toMatchObject({ ChecksumAlgorithm: "SHA256" });
  });

  it("downloads to compare when S3 keeps no whole-object SHA-256 (older objects, multipart uploads)", async () => {
    const body = new TextEncoder().encode("same");
    const stream = async function* () {
      yield body;
    };
    s3.on(GetObjectCommand).callsFake(() => ({ Body: stream() as never, ContentLength: body.byteLength }));
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4 });
    expect(await store().compareStored("k", body, sha256Hex(body))).toBe("same");
    s3.on(HeadObjectCommand).resolves({
      ContentLength: 4,
      ChecksumSHA256: `${base64(sha256Hex(body))}-2`,
      ChecksumType: "COMPOSITE",
    });
    expect(await store().compareStored("k", body, sha256Hex(body))).toBe("same");
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(2);
    // A size that differs needs neither.
    expect(await store().compareStored("k", new Uint8Array(5), sha256Hex(new Uint8Array(5)))).toBe("different");
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(2);
  });

  it("reports a body S3 received changed (BadDigest) as an integrity error that may pass", async () => {
    s3.on(PutObjectCommand).rejects(
      new S3ServiceException({ name: "BadDigest", $fault: "client", $metadata: { httpStatusCode: 400 } }),
    );
    const body = new TextEncoder().encode("x");
    await expect(store().put("k", body, { sha256: sha256Hex(body) })).rejects.toMatchObject({
      code: "STORAGE_INTEGRITY",
      retryable: true,
      message: expect.stringMatching(/^S3 put s3:\/\/bkt\/k: the service received bytes whose SHA-256 differs/),
    });
  });
});

describe("S3 on s3rver, which keeps no checksum", () => {
  it("compares an existing object by downloading it", async () => {
    const client = new S3Client(clientConfig());
    const storage = new S3Storage({ bucket: BUCKET, client, conditionalWrites: false });
    const key = `checksum-${Date.now()}/x.mjs`;
    const body = new TextEncoder().encode("export {}");
    await storage.blobs.put(key, body, { sha256: sha256Hex(body) });
    const send = vi.spyOn(client, "send");
    expect(await storage.blobs.compareStored?.(key, body, sha256Hex(body))).toBe("same");
    expect(send.mock.calls.map(([command]) => command.constructor.name)).toEqual([
      "HeadObjectCommand",
      "GetObjectCommand",
    ]);
  });
});

describe("S3 as the configured default storage", () => {
  it("registers with the seed's call, flow.register(project, { bucket })", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { SqliteBackend, setDefaultStorageType } = await import("@tern/core/runtime");
    const { flow } = await import("./fixtures/numbers.js");
    const home = await mkdtemp(join(tmpdir(), "tern-s3-default-"));
    const savedHome = process.env.TERN_HOME;
    process.env.TERN_HOME = home;
    const backend = await SqliteBackend.open({ path: join(home, "state.db") });
    setDefaultStorageType("S3Storage");
    try {
      const result = await flow.register("My First Project", {
        bucket: BUCKET,
        prefix: "default-storage",
        clientConfig: clientConfig(),
        conditionalWrites: false,
        backend,
      });
      expect(result).toMatchObject({ name: "numbers", project: "My First Project", version: 1, status: "new" });
      const version = await backend.getFlowVersion("My First Project", "numbers");
      expect(version?.storage).toMatchObject({
        type: "S3Storage",
        options: { bucket: BUCKET, prefix: "default-storage" },
      });
      const keys = await new S3Storage({ bucket: BUCKET, clientConfig: clientConfig() }).blobs.list("default-storage/");
      expect(keys).toContain(result.location);
    } finally {
      setDefaultStorageType("LocalStorage");
      await backend.close();
      process.env.TERN_HOME = savedHome;
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe("endpoints", () => {
  it("rejects an endpoint that carries credentials, without repeating them", () => {
    for (const endpoint of [
      "https://AKIAEXAMPLE:s3cr3t@minio.example.com",
      "https://minio.example.com/?X-Amz-Credential=x",
    ]) {
      let message = "";
      try {
        new S3Storage({ bucket: "my-flows", clientConfig: { endpoint } });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/clientConfig\.endpoint carries credentials or parameters/);
      expect(message).not.toContain("s3cr3t");
      expect(message).not.toContain("X-Amz-Credential");
    }
  });
});
