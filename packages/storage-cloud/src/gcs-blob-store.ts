import { createHash } from "node:crypto";
import { once } from "node:events";
import type { Bucket, Storage as GcsClient, StorageOptions as GcsClientOptions } from "@google-cloud/storage";
import type { PutOptions } from "@tern/core/plugin";
import { readBody } from "./body.js";
import type { Failure, FailureKind, Hints, Operation, StoredObject } from "./cloud-blob-store.js";
import { base64ToHex, CloudBlobStore } from "./cloud-blob-store.js";

/** Options of {@link GCSBlobStore}. */
export interface GCSBlobStoreOptions {
  readonly storage: GcsClient | undefined;
  readonly storageOptions: GcsClientOptions;
  /** For messages only. */
  readonly projectId: string | undefined;
}

/** IAM permissions of each operation. */
const PERMISSIONS: Record<Operation, string> = {
  put: "storage.objects.create",
  get: "storage.objects.get",
  head: "storage.objects.get",
  list: "storage.objects.list",
  delete: "storage.objects.delete",
};

/** The `BlobStore` over one bucket. The SDK is imported and the client built on first use. */
export class GCSBlobStore extends CloudBlobStore<Bucket> {
  readonly url: string;
  // The Cloud Storage emulator ignores ifGenerationMatch: look first, so that an existing object is
  // compared instead of overwritten there too. On GCS the precondition still closes the race.
  protected readonly looksFirst = true;

  constructor(
    readonly bucket: string,
    private readonly options: GCSBlobStoreOptions,
  ) {
    super("GCS", `bucket "${bucket}"`, "MD5");
    this.url = `gs://${bucket}`;
  }

  protected async connect(): Promise<Bucket> {
    const storage =
      this.options.storage ?? new (await import("@google-cloud/storage")).Storage(this.options.storageOptions);
    return storage.bucket(this.bucket);
  }

  protected async write(bucket: Bucket, key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    await bucket.file(key).save(bytes, {
      resumable: false,
      // MD5 rather than CRC32C: Node hashes MD5 natively, several times faster than the SDK's
      // JavaScript CRC32C. GCS checks the md5Hash sent in the metadata before it stores the object
      // (and keeps it, for later comparisons); the SDK then compares its own hash with GCS's.
      validation: "md5",
      contentType: options.contentType ?? "application/octet-stream",
      metadata: { md5Hash: createHash("md5").update(bytes).digest("base64") },
      // Create-if-absent. It also makes the upload safe for the SDK to retry: a retry of an upload
      // that did land gets 412 and is compared.
      preconditionOpts: { ifGenerationMatch: 0 },
    });
  }

  protected async read(bucket: Bucket, key: string): Promise<Uint8Array> {
    // CRC32C (the SDK's default) works for every object, composite ones included.
    const stream = bucket.file(key).createReadStream({ validation: "crc32c" });
    const response = once(stream, "response") as Promise<[{ headers?: Record<string, unknown> }]>;
    stream.read(0); // the SDK sends the request on the first read
    const [raw] = await response;
    // With the length known up front the body is copied into one buffer as it arrives.
    return readBody(stream, bodyLength(raw?.headers ?? {}));
  }

  protected async stat(bucket: Bucket, key: string): Promise<StoredObject> {
    const [metadata] = await bucket.file(key).getMetadata();
    // Composite objects have no md5Hash: they are compared by their bytes.
    return { sizeBytes: Number(metadata.size ?? 0), md5: base64ToHex(metadata.md5Hash, 16) };
  }

  protected async keys(bucket: Bucket, prefix: string): Promise<string[]> {
    const [files] = await bucket.getFiles({ prefix, autoPaginate: true });
    return files.map((file) => file.name);
  }

  protected async remove(bucket: Bucket, key: string): Promise<void> {
    // Not `ignoreNotFound`: it would also swallow "the bucket does not exist".
    await bucket.file(key).delete();
  }

  /** The one place for GCS's statuses and messages. */
  protected classify(error: unknown, operation: Operation): Failure {
    const status = httpStatus(error);
    const message = (error as Error)?.message ?? String(error);
    const kind = ((): FailureKind => {
      if (bucketMissing(error)) return "bucket-missing";
      if (operation === "put" && status === 412) return "exists";
      if (status === 404) return "not-found";
      if (status === 403) return "access";
      if (status === 401 || isCredentialsError(message)) return "credentials";
      if (status !== undefined && (status === 429 || status >= 500)) return "unavailable";
      // GCS refuses a body whose MD5 is not the one sent: "Provided MD5 hash … doesn't match …".
      if (operation === "put" && status === 400 && /md5/i.test(message)) return "integrity";
      return "other";
    })();
    return { kind, status, said: status === undefined ? message : `${status} ${message}` };
  }

  protected readonly hints: Hints = {
    bucketMissing: () => {
      const project = this.options.projectId ?? process.env.GOOGLE_CLOUD_PROJECT ?? process.env.GCLOUD_PROJECT;
      return {
        where: `(project ${project ?? "not set"})`,
        create: `gcloud storage buckets create gs://${this.bucket} --project ${project ?? "<project>"}`,
        fix: "bucket",
      };
    },
    access: (operation, key) => ({
      permission: PERMISSIONS[operation],
      resource: operation === "list" ? this.url : this.describe(key),
      advice:
        "Grant it to the principal this runs as (roles/storage.objectUser on the bucket has it); check IAM conditions, VPC Service Controls and, for a requester-pays bucket, the billing project.",
    }),
    credentials: () => {
      const adc = process.env.GOOGLE_APPLICATION_CREDENTIALS;
      const gcloudDir = process.env.CLOUDSDK_CONFIG ?? "~/.config/gcloud";
      return {
        problem: "no usable Google Cloud credentials",
        advice:
          `The default credential chain looked at GOOGLE_APPLICATION_CREDENTIALS (${adc === undefined ? "not set" : JSON.stringify(adc)}), ` +
          `gcloud's application default credentials file (${gcloudDir}/application_default_credentials.json, written by gcloud auth application-default login), ` +
          "and the metadata server (GCE, Cloud Run, GKE). Configure one of them where this runs.",
      };
    },
    unavailable: () =>
      "after the SDK's retries (the service is unavailable or throttling). Try again later, or allow more retries (storageOptions.retryOptions: maxRetries, totalTimeout).",
    failed: (_failure, error) => {
      const code = (error as { code?: unknown })?.code;
      return `: ${code === undefined ? "" : `${String(code)} `}${(error as Error)?.message ?? String(error)}`;
    },
  };
}

function httpStatus(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

/**
 * GCS answers 404 both for a missing object and a missing bucket; only the message tells them
 * apart ("The specified bucket does not exist."). Object reads in a missing bucket may answer
 * "No such object", so only writes and listings are sure to name the bucket.
 */
function bucketMissing(error: unknown): boolean {
  if (httpStatus(error) !== 404) return false;
  const inner = (error as { errors?: { message?: string }[] })?.errors ?? [];
  return [(error as Error)?.message, ...inner.map((e) => e?.message)].some(
    (m) => typeof m === "string" && /bucket does not exist/i.test(m),
  );
}

/** The auth library's errors when the default chain finds nothing, or a key file that is not there. */
function isCredentialsError(message: string): boolean {
  return /Could not load the default credentials|^The file at .* does not exist, or it is not a file/.test(message);
}

/** The body's length when the response carries the stored bytes as they are (not gzip-transcoded). */
function bodyLength(headers: Record<string, unknown>): number | undefined {
  const encoding = headers["content-encoding"];
  if (encoding !== undefined && encoding !== "" && encoding !== "identity") return undefined;
  const header = headers["content-length"];
  const length = typeof header === "string" && header !== "" ? Number(header) : Number.NaN;
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}
