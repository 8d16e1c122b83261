/**
 * `S3Storage`: tern flows in Amazon S3.
 *
 * @example
 * import { S3Storage } from "@tern/storage-cloud/s3";
 * new Flow("etl", { storage: new S3Storage({ bucket: "my-flows" }) }, build);
 */
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { Storage, type StorageOptions } from "@tern/core";
import { type BlobStore, type JsonValue, registerStorageType } from "@tern/core/plugin";
import * as z from "zod/mini";
import { checkedString, clientOptions, givenClient, optionsCheck, rule } from "./options.js";
import { S3BlobStore } from "./s3-blob-store.js";

export { S3BlobStore, type S3BlobStoreOptions } from "./s3-blob-store.js";

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

const SSE = ["AES256", "aws:kms", "aws:kms:dsse"] as const;

const checkOptions = optionsCheck<S3StorageOptions>("S3Storage")(
  {
    bucket: checkedString((bucket) =>
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)
        ? undefined
        : `bucket ${JSON.stringify(bucket)} is not a valid S3 bucket name (3-63 lowercase letters, digits, dots and hyphens).`,
    ),
    region: z.optional(z.string()),
    client: givenClient<S3Client>("send", "client must be an S3Client from @aws-sdk/client-s3."),
    // Only a string endpoint is kept in the JSON (see jsonOptions), so only a string can leak.
    clientConfig: clientOptions<S3ClientConfig>("clientConfig", "S3Client", "endpoint", (config) =>
      typeof config.endpoint === "string" ? config.endpoint : undefined,
    ),
    serverSideEncryption: z.optional(z.enum(SSE)),
    kmsKeyId: z.optional(z.string()),
    conditionalWrites: z.optional(z.boolean()),
  },
  rule((o) => o.client === undefined || o.clientConfig === undefined, "give either client or clientConfig, not both."),
  rule(
    (o) =>
      o.kmsKeyId === undefined || o.serverSideEncryption === "aws:kms" || o.serverSideEncryption === "aws:kms:dsse",
    'kmsKeyId needs serverSideEncryption "aws:kms" or "aws:kms:dsse".',
  ),
);

// register()'s options for a default S3Storage (TERN_DEFAULT_STORAGE=S3Storage) are typed once this module is imported.
declare module "@tern/core/plugin" {
  interface StorageOptionsByType {
    S3Storage: S3StorageOptions;
  }
}

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
    super(checkOptions(options));
    this.bucket = options.bucket;
    this.region = options.region;
    this.serverSideEncryption = options.serverSideEncryption;
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

registerStorageType(S3Storage.type, (options) => new S3Storage(options as unknown as S3StorageOptions));
