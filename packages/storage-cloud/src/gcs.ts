/**
 * `GCSStorage`: tern flows in Google Cloud Storage.
 *
 * @example
 * import { GCSStorage } from "@tern/storage-cloud/gcs";
 * new Flow("etl", { storage: new GCSStorage({ bucket: "my-flows", projectId: "my-project" }) }, build);
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import type { Bucket, Storage as GcsClient, StorageOptions as GcsClientOptions } from "@google-cloud/storage";
import {
  type BlobHead,
  type BlobStore,
  checkKey,
  type JsonValue,
  NotFoundError,
  type PutOptions,
  registerStorageType,
  Storage,
  type StorageOptions,
  TernError,
} from "@tern/core";
import { checkEndpoint, checkOptions, compareExisting, readBody } from "./shared.js";

/** Options of {@link GCSStorage}. */
export interface GCSStorageOptions extends StorageOptions {
  /** The bucket (it must exist: tern never creates buckets). */
  readonly bucket: string;
  /**
   * The project, for messages and for the client tern builds.
   * @default `storageOptions.projectId`, else the SDK's own detection (GOOGLE_CLOUD_PROJECT, the credentials)
   */
  readonly projectId?: string;
  /** A `@google-cloud/storage` client to use instead of one built from `storageOptions`. Never serialized. */
  readonly storage?: GcsClient;
  /**
   * Options for the client tern builds. Only `apiEndpoint` (and `useAuthWithCustomEndpoint`) are
   * kept in the storage's JSON, for emulators and private endpoints; credentials never are.
   * @default the SDK's defaults and its default credential chain
   */
  readonly storageOptions?: GcsClientOptions;
}

const OPTION_KEYS = ["prefix", "external", "bucket", "projectId", "storage", "storageOptions"];

/** Flows stored in a Cloud Storage bucket, content-addressed under the storage's prefix. */
export class GCSStorage extends Storage {
  static override readonly type: string = "GCSStorage";
  readonly bucket: string;
  readonly projectId: string | undefined;
  readonly #storage: GcsClient | undefined;
  readonly #storageOptions: GcsClientOptions | undefined;

  constructor(options: GCSStorageOptions) {
    checkOptions("GCSStorage", options, OPTION_KEYS, ["bucket"]);
    if (options.storage !== undefined && options.storageOptions !== undefined) {
      throw new TernError("STORAGE_OPTIONS", "GCSStorage: give either storage or storageOptions, not both.");
    }
    if (options.storage !== undefined && typeof (options.storage as { bucket?: unknown })?.bucket !== "function") {
      throw new TernError(
        "STORAGE_OPTIONS",
        "GCSStorage: storage must be a Storage client from @google-cloud/storage (new Storage(...)).",
      );
    }
    if (
      options.storageOptions !== undefined &&
      (typeof options.storageOptions !== "object" || options.storageOptions === null)
    ) {
      throw new TernError(
        "STORAGE_OPTIONS",
        "GCSStorage: storageOptions must be an object of @google-cloud/storage options.",
      );
    }
    const bucketProblem = bucketNameProblem(options.bucket);
    if (bucketProblem !== undefined) {
      throw new TernError(
        "STORAGE_OPTIONS",
        `GCSStorage: bucket ${JSON.stringify(options.bucket)} is not a valid Cloud Storage bucket name: ${bucketProblem} (see https://cloud.google.com/storage/docs/buckets#naming).`,
      );
    }
    checkEndpoint("GCSStorage", "storageOptions.apiEndpoint", options.storageOptions?.apiEndpoint);
    const projectId = options.projectId ?? options.storageOptions?.projectId;
    // Project IDs are 6-30 lowercase letters, digits and hyphens; old ones may carry a domain ("example.com:p").
    if (projectId !== undefined && !/^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(String(projectId))) {
      throw new TernError(
        "STORAGE_OPTIONS",
        `GCSStorage: projectId ${JSON.stringify(projectId)} is not a Google Cloud project ID (6-30 lowercase letters, digits and hyphens, starting with a letter).`,
      );
    }
    super(options);
    this.bucket = options.bucket;
    this.projectId = projectId;
    this.#storage = options.storage;
    this.#storageOptions = options.storageOptions;
  }

  protected override createBlobStore(): BlobStore {
    return new GCSBlobStore(this.bucket, {
      storage: this.#storage,
      storageOptions: {
        ...this.#storageOptions,
        ...(this.projectId === undefined ? {} : { projectId: this.projectId }),
      },
      projectId: this.projectId,
    });
  }

  protected override jsonOptions(): Record<string, JsonValue> {
    const out: Record<string, JsonValue> = { bucket: this.bucket };
    if (this.projectId !== undefined) out.projectId = this.projectId;
    // Only the endpoint survives: `credentials` and `keyFilename` stay out. A key file path is not a
    // secret, but it names a file on this machine; where the storage is rebuilt (an agent, a runner),
    // the default credential chain (GOOGLE_APPLICATION_CREDENTIALS, the metadata server) is used.
    const apiEndpoint = this.#storageOptions?.apiEndpoint;
    if (typeof apiEndpoint === "string") {
      // A private endpoint (Private Service Connect) needs auth, an emulator does not: keep which one it is.
      out.storageOptions =
        this.#storageOptions?.useAuthWithCustomEndpoint === true
          ? { apiEndpoint, useAuthWithCustomEndpoint: true }
          : { apiEndpoint };
    }
    return out;
  }
}

/** Why `name` is not a valid bucket name, or `undefined` when it is one. */
function bucketNameProblem(name: string): string | undefined {
  if (!/^[a-z0-9][a-z0-9._-]*[a-z0-9]$/.test(name)) {
    return 'use lowercase letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  }
  const parts = name.split(".");
  if (name.length < 3 || (parts.length === 1 && name.length > 63) || name.length > 222) {
    return "use 3-63 characters (up to 222 with dots)";
  }
  if (parts.some((part) => part === "" || part.length > 63)) return "each dot-separated part must be 1-63 characters";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "it must not look like an IP address";
  if (name.startsWith("goog") || name.includes("google")) return 'it must not start with "goog" or contain "google"';
  return undefined;
}

interface GCSBlobStoreOptions {
  readonly storage: GcsClient | undefined;
  readonly storageOptions: GcsClientOptions;
  /** For messages only. */
  readonly projectId: string | undefined;
}

type Operation = "put" | "get" | "head" | "list" | "delete";

/** The `BlobStore` over one bucket. The SDK is imported and the client built on first use. */
export class GCSBlobStore implements BlobStore {
  readonly url: string;
  #bucket: Promise<Bucket> | undefined;

  constructor(
    readonly bucket: string,
    private readonly options: GCSBlobStoreOptions,
  ) {
    this.url = `gs://${bucket}`;
  }

  describe(key: string): string {
    return `${this.url}/${key}`;
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<"created" | "exists"> {
    checkKey(key);
    const bucket = await this.#open();
    // The Cloud Storage emulator ignores ifGenerationMatch: look first, so that an existing object is
    // compared instead of overwritten there too. On GCS the precondition below still closes the race.
    if ((await this.head(key)) !== undefined) return compareExisting(this, key, options.sha256);
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    try {
      await bucket.file(key).save(bytes, {
        resumable: false,
        // MD5 rather than CRC32C: Node hashes MD5 natively, several times faster than the SDK's
        // JavaScript CRC32C. GCS checks the md5Hash sent in the metadata before it stores the object;
        // the SDK then compares its own hash with the one GCS reports.
        validation: "md5",
        contentType: options.contentType ?? "application/octet-stream",
        metadata: { md5Hash: createHash("md5").update(bytes).digest("base64") },
        // Create-if-absent. It also makes the upload safe for the SDK to retry: a retry of an upload
        // that did land gets 412 and is compared below.
        preconditionOpts: { ifGenerationMatch: 0 },
      });
      return "created";
    } catch (error) {
      if (httpStatus(error) === 412) return compareExisting(this, key, options.sha256);
      throw this.#error("put", key, error);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    const bucket = await this.#open();
    try {
      // CRC32C (the SDK's default) works for every object, composite ones included.
      const stream = bucket.file(key).createReadStream({ validation: "crc32c" });
      const response = once(stream, "response") as Promise<[{ headers?: Record<string, unknown> }]>;
      stream.read(0); // the SDK sends the request on the first read
      const [raw] = await response;
      // With the length known up front the body is copied into one buffer as it arrives.
      return await readBody(stream, bodyLength(raw?.headers ?? {}));
    } catch (error) {
      throw this.#error("get", key, error);
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    checkKey(key);
    const bucket = await this.#open();
    try {
      const [metadata] = await bucket.file(key).getMetadata();
      return { sizeBytes: Number(metadata.size ?? 0) };
    } catch (error) {
      if (httpStatus(error) === 404 && !bucketMissing(error)) return undefined;
      throw this.#error("head", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const bucket = await this.#open();
    try {
      const [files] = await bucket.getFiles({ prefix, autoPaginate: true });
      return files.map((file) => file.name).sort();
    } catch (error) {
      throw this.#error("list", prefix, error);
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const bucket = await this.#open();
    try {
      // Not `ignoreNotFound`: it would also swallow "the bucket does not exist".
      await bucket.file(key).delete();
    } catch (error) {
      if (httpStatus(error) !== 404 || bucketMissing(error)) throw this.#error("delete", key, error);
    }
  }

  #open(): Promise<Bucket> {
    this.#bucket ??= (async () => {
      const storage =
        this.options.storage ?? new (await import("@google-cloud/storage")).Storage(this.options.storageOptions);
      return storage.bucket(this.bucket);
    })();
    return this.#bucket;
  }

  /** Maps an SDK error to one that says what failed and what to do. The one place for GCS's codes. */
  #error(operation: Operation, key: string, error: unknown): Error {
    const status = httpStatus(error);
    const message = (error as Error)?.message ?? String(error);
    const where = operation === "list" ? `${this.url} (prefix ${JSON.stringify(key)})` : this.describe(key);
    if (bucketMissing(error)) {
      const project = this.options.projectId ?? process.env.GOOGLE_CLOUD_PROJECT ?? process.env.GCLOUD_PROJECT;
      return new TernError(
        "STORAGE_BUCKET",
        `GCS bucket "${this.bucket}" does not exist (project ${project ?? "not set"}). Create it (gcloud storage buckets create gs://${this.bucket} --project ${project ?? "<project>"}) or fix the storage's bucket.`,
        { cause: error },
      );
    }
    if (status === 404 && operation === "get") {
      return new NotFoundError("blob", key, `${this.describe(key)} does not exist.`, { cause: error });
    }
    if (status === 403) {
      const permission = {
        put: "storage.objects.create",
        get: "storage.objects.get",
        head: "storage.objects.get",
        list: "storage.objects.list",
        delete: "storage.objects.delete",
      }[operation];
      const resource = operation === "list" ? this.url : this.describe(key);
      return new TernError(
        "STORAGE_ACCESS",
        `GCS denied ${permission} on ${resource} (${message}). Grant it to the principal this runs as (roles/storage.objectUser on the bucket has it); check IAM conditions, VPC Service Controls and, for a requester-pays bucket, the billing project.`,
        { cause: error },
      );
    }
    if (status === 401 || isCredentialsError(message)) {
      const adc = process.env.GOOGLE_APPLICATION_CREDENTIALS;
      const gcloudDir = process.env.CLOUDSDK_CONFIG ?? "~/.config/gcloud";
      return new TernError(
        "STORAGE_CREDENTIALS",
        `GCS: no usable Google Cloud credentials for ${operation} ${where} (${message}). The default credential chain looked at ` +
          `GOOGLE_APPLICATION_CREDENTIALS (${adc === undefined ? "not set" : JSON.stringify(adc)}), gcloud's application default credentials file ` +
          `(${gcloudDir}/application_default_credentials.json, written by gcloud auth application-default login), and the metadata server ` +
          "(GCE, Cloud Run, GKE). Configure one of them where this runs.",
        { cause: error },
      );
    }
    if (status !== undefined && (status === 429 || status >= 500)) {
      return new TernError(
        "STORAGE_UNAVAILABLE",
        `GCS ${operation} ${where} failed with ${status} (${message}): the service is unavailable or throttling, and the SDK's retries did not get through. Try again later, or raise storageOptions.retryOptions (maxRetries, totalTimeout).`,
        { cause: error, retryable: true },
      );
    }
    const code = (error as { code?: unknown })?.code;
    return new TernError(
      "STORAGE",
      `GCS ${operation} ${where} failed: ${code === undefined ? "" : `${String(code)} `}${message}`,
      // No HTTP answer at all (a reset, a timeout, DNS): the network, not the request.
      { cause: error, retryable: status === undefined || status === 408 },
    );
  }
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

registerStorageType(GCSStorage.type, (options) => new GCSStorage(options as unknown as GCSStorageOptions));
