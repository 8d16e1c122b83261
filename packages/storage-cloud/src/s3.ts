/**
 * `S3Storage`: tern flows in Amazon S3.
 *
 * @example
 * import { S3Storage } from "@tern/storage-cloud/s3";
 * new Flow("etl", { storage: new S3Storage({ bucket: "my-flows" }) }, build);
 */
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
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
import { checkEndpoint, checkOptions, compareExisting, hexToBase64, readBody } from "./shared.js";

/** Options of {@link S3Storage}. */
export interface S3StorageOptions extends StorageOptions {
  /** The bucket (it must exist). */
  readonly bucket: string;
  /** @default the SDK's region chain (AWS_REGION, the shared config file) */
  readonly region?: string;
  /** A client to use instead of one built from `clientConfig`. Never serialized. */
  readonly client?: S3Client;
  /**
   * Options for the client tern builds. Only `endpoint` and `forcePathStyle` are kept in the
   * storage's JSON (for S3-compatible endpoints); credentials never are.
   */
  readonly clientConfig?: S3ClientConfig;
  /** Server-side encryption of uploaded objects. @default the bucket's default encryption */
  readonly serverSideEncryption?: "AES256" | "aws:kms" | "aws:kms:dsse";
  /** The KMS key for `aws:kms` encryption. @default the AWS managed key */
  readonly kmsKeyId?: string;
  /**
   * Whether the endpoint honours `If-None-Match: *` (Amazon S3 does since 2024). Set `false` for
   * S3-compatible servers that ignore it (s3rver, older MinIO): tern then checks for an existing
   * object before each write, one request more, and concurrent writers are not detected.
   * @default true
   */
  readonly conditionalWrites?: boolean;
}

const OPTION_KEYS = [
  "prefix",
  "external",
  "bucket",
  "region",
  "client",
  "clientConfig",
  "serverSideEncryption",
  "kmsKeyId",
  "conditionalWrites",
];

/** Flows stored in an S3 bucket, content-addressed under the storage's prefix. */
export class S3Storage extends Storage {
  static override readonly type: string = "S3Storage";
  readonly bucket: string;
  readonly region: string | undefined;
  readonly serverSideEncryption: S3StorageOptions["serverSideEncryption"];
  readonly kmsKeyId: string | undefined;
  readonly conditionalWrites: boolean;
  readonly #client: S3Client | undefined;
  readonly #clientConfig: S3ClientConfig | undefined;

  constructor(options: S3StorageOptions) {
    checkOptions("S3Storage", options, OPTION_KEYS, ["bucket"]);
    if (options.client !== undefined && options.clientConfig !== undefined) {
      throw new TernError("STORAGE_OPTIONS", "S3Storage: give either client or clientConfig, not both.");
    }
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw new TernError(
        "STORAGE_OPTIONS",
        `S3Storage: bucket ${JSON.stringify(options.bucket)} is not a valid S3 bucket name (3-63 lowercase letters, digits, dots and hyphens).`,
      );
    }
    const endpoint = options.clientConfig?.endpoint;
    // Only a string endpoint is kept in the JSON (see jsonOptions), so only a string can leak.
    checkEndpoint("S3Storage", "clientConfig.endpoint", typeof endpoint === "string" ? endpoint : undefined);
    const sse = options.serverSideEncryption;
    if (sse !== undefined && !["AES256", "aws:kms", "aws:kms:dsse"].includes(sse)) {
      throw new TernError(
        "STORAGE_OPTIONS",
        `S3Storage: serverSideEncryption ${JSON.stringify(sse)} is not one of AES256, aws:kms, aws:kms:dsse.`,
      );
    }
    if (options.kmsKeyId !== undefined && sse !== "aws:kms" && sse !== "aws:kms:dsse") {
      throw new TernError(
        "STORAGE_OPTIONS",
        'S3Storage: kmsKeyId needs serverSideEncryption "aws:kms" or "aws:kms:dsse".',
      );
    }
    super(options);
    this.bucket = options.bucket;
    this.region = options.region;
    this.serverSideEncryption = sse;
    this.kmsKeyId = options.kmsKeyId;
    this.conditionalWrites = options.conditionalWrites ?? true;
    this.#client = options.client;
    this.#clientConfig = options.clientConfig;
  }

  protected override createBlobStore(): BlobStore {
    return new S3BlobStore(this.bucket, {
      client: this.#client,
      clientConfig: { ...(this.region === undefined ? {} : { region: this.region }), ...this.#clientConfig },
      serverSideEncryption: this.serverSideEncryption,
      kmsKeyId: this.kmsKeyId,
      conditionalWrites: this.conditionalWrites,
    });
  }

  protected override jsonOptions(): Record<string, JsonValue> {
    const out: Record<string, JsonValue> = { bucket: this.bucket };
    if (this.region !== undefined) out.region = this.region;
    if (this.serverSideEncryption !== undefined) out.serverSideEncryption = this.serverSideEncryption;
    if (this.kmsKeyId !== undefined) out.kmsKeyId = this.kmsKeyId;
    if (!this.conditionalWrites) out.conditionalWrites = false;
    const endpoint = this.#clientConfig?.endpoint;
    if (typeof endpoint === "string")
      out.clientConfig = { endpoint, forcePathStyle: this.#clientConfig?.forcePathStyle ?? false };
    return out;
  }
}

interface S3BlobStoreOptions {
  readonly client: S3Client | undefined;
  readonly clientConfig: S3ClientConfig;
  readonly serverSideEncryption: S3StorageOptions["serverSideEncryption"];
  readonly kmsKeyId: string | undefined;
  readonly conditionalWrites: boolean;
}

type S3Module = typeof import("@aws-sdk/client-s3");

/** The `BlobStore` over one bucket. The SDK is imported and the client built on first use. */
export class S3BlobStore implements BlobStore {
  readonly url: string;
  #sdk: Promise<{ sdk: S3Module; client: S3Client }> | undefined;

  constructor(
    readonly bucket: string,
    private readonly options: S3BlobStoreOptions,
  ) {
    this.url = `s3://${bucket}`;
  }

  describe(key: string): string {
    return `${this.url}/${key}`;
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<"created" | "exists"> {
    checkKey(key);
    const { sdk, client } = await this.#open();
    // Servers that ignore If-None-Match would overwrite: look first there, so that an existing
    // object is compared instead.
    if (!this.options.conditionalWrites && (await this.head(key)) !== undefined) {
      return compareExisting(this, key, options.sha256);
    }
    try {
      await client.send(
        new sdk.PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType ?? "application/octet-stream",
          ChecksumSHA256: hexToBase64(options.sha256),
          IfNoneMatch: "*",
          ...(this.options.serverSideEncryption === undefined
            ? {}
            : { ServerSideEncryption: this.options.serverSideEncryption }),
          ...(this.options.kmsKeyId === undefined ? {} : { SSEKMSKeyId: this.options.kmsKeyId }),
        }),
      );
      return "created";
    } catch (error) {
      // 412: another writer created it first; 409: a concurrent conditional write is in flight.
      const status = httpStatus(error);
      if (status === 412 || status === 409) return compareExisting(this, key, options.sha256);
      throw this.#error("put", key, error);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    const { sdk, client } = await this.#open();
    try {
      const response = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return await readBody(response.Body as AsyncIterable<Uint8Array>, response.ContentLength);
    } catch (error) {
      throw this.#error("get", key, error);
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    checkKey(key);
    const { sdk, client } = await this.#open();
    try {
      const response = await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { sizeBytes: response.ContentLength ?? 0 };
    } catch (error) {
      if (httpStatus(error) === 404 && errorName(error) !== "NoSuchBucket") return undefined;
      throw this.#error("head", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const { sdk, client } = await this.#open();
    const keys: string[] = [];
    try {
      for await (const page of sdk.paginateListObjectsV2({ client }, { Bucket: this.bucket, Prefix: prefix })) {
        for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
      }
    } catch (error) {
      throw this.#error("list", prefix, error);
    }
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const { sdk, client } = await this.#open();
    try {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (httpStatus(error) !== 404 || errorName(error) === "NoSuchBucket") throw this.#error("delete", key, error);
    }
  }

  #open(): Promise<{ sdk: S3Module; client: S3Client }> {
    this.#sdk ??= import("@aws-sdk/client-s3").then((sdk) => ({
      sdk,
      client: this.options.client ?? new sdk.S3Client(this.options.clientConfig),
    }));
    return this.#sdk;
  }

  /** Maps an SDK error to one that says what failed and what to do. The one place for S3's codes. */
  #error(operation: "put" | "get" | "head" | "list" | "delete", key: string, error: unknown): Error {
    const name = errorName(error);
    const status = httpStatus(error);
    const region = this.options.clientConfig.region ?? process.env.AWS_REGION ?? "the configured region";
    const action = {
      put: "s3:PutObject",
      get: "s3:GetObject",
      head: "s3:GetObject",
      list: "s3:ListBucket",
      delete: "s3:DeleteObject",
    }[operation];
    const resource = operation === "list" ? `arn:aws:s3:::${this.bucket}` : `arn:aws:s3:::${this.bucket}/${key}`;
    if (name === "NoSuchBucket") {
      return new TernError(
        "STORAGE_BUCKET",
        `S3 bucket "${this.bucket}" does not exist in ${region}. Create it (aws s3 mb s3://${this.bucket} --region ${region === "the configured region" ? "<region>" : region}) or fix the storage's bucket and region.`,
        { cause: error },
      );
    }
    if (name === "NoSuchKey" || (operation === "get" && status === 404)) {
      return new NotFoundError("blob", key, `${this.describe(key)} does not exist.`, { cause: error });
    }
    if (name === "InvalidAccessKeyId" || name === "SignatureDoesNotMatch" || name === "ExpiredToken") {
      return new TernError(
        "STORAGE_CREDENTIALS",
        `S3 rejected the AWS credentials for ${operation} ${this.describe(key)} (${name}). Check the access key, secret and session token where this runs, or let the default chain find a role.`,
        { cause: error },
      );
    }
    if (name === "AccessDenied" || status === 403) {
      return new TernError(
        "STORAGE_ACCESS",
        `S3 denied ${action} on ${resource}. Grant it to the role or user this runs as (check the bucket policy and KMS key policy too).`,
        { cause: error },
      );
    }
    if (name === "CredentialsProviderError" || /credential/i.test((error as Error)?.message ?? "")) {
      return new TernError(
        "STORAGE_CREDENTIALS",
        `S3: no AWS credentials found for ${operation} ${this.describe(key)}. The SDK looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared files (~/.aws/credentials, ~/.aws/config), SSO, web identity, and the ECS/EC2 metadata endpoints. Configure one of them where this runs.`,
        { cause: error },
      );
    }
    const attempts = (error as { $metadata?: { attempts?: number } })?.$metadata?.attempts;
    if (status !== undefined && (status >= 500 || status === 429 || name === "SlowDown")) {
      return new TernError(
        "STORAGE_UNAVAILABLE",
        `S3 ${operation} ${this.describe(key)} failed with ${status} ${name} after ${attempts ?? "several"} attempts (the service is throttling or unavailable). Try again later, or raise the client's maxAttempts.`,
        { cause: error, retryable: true },
      );
    }
    return new TernError(
      "STORAGE",
      `S3 ${operation} ${this.describe(key)} failed: ${name}: ${(error as Error)?.message}`,
      // No HTTP answer at all (a reset, a timeout, DNS): the network, not the request.
      { cause: error, retryable: status === undefined || status === 408 },
    );
  }
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function errorName(error: unknown): string {
  return (error as { name?: string; Code?: string })?.Code ?? (error as Error)?.name ?? "Error";
}

registerStorageType(S3Storage.type, (options) => new S3Storage(options as unknown as S3StorageOptions));
