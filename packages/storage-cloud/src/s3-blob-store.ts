import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import type { PutOptions } from "@tern/core/plugin";
import { readBody } from "./body.js";
import type { Failure, FailureKind, Hints, Operation, StoredObject } from "./cloud-blob-store.js";
import { base64ToHex, CloudBlobStore } from "./cloud-blob-store.js";

/** Options of {@link S3BlobStore}. */
export interface S3BlobStoreOptions {
  readonly client: S3Client | undefined;
  readonly clientConfig: S3ClientConfig;
  readonly serverSideEncryption: "AES256" | "aws:kms" | "aws:kms:dsse" | undefined;
  readonly kmsKeyId: string | undefined;
  /** Whether the endpoint honours `If-None-Match: *`; without it, put looks for the object first. */
  readonly conditionalWrites: boolean;
}

type S3Module = typeof import("@aws-sdk/client-s3");
type Opened = { readonly sdk: S3Module; readonly client: S3Client };

/** IAM actions of each operation, as policies name them. */
const ACTIONS: Record<Operation, string> = {
  put: "s3:PutObject",
  get: "s3:GetObject",
  head: "s3:GetObject",
  list: "s3:ListBucket",
  delete: "s3:DeleteObject",
};

const REJECTED_CREDENTIALS = ["InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"];

/** The `BlobStore` over one bucket. The SDK is imported and the client built on first use. */
export class S3BlobStore extends CloudBlobStore<Opened> {
  readonly url: string;
  protected readonly looksFirst: boolean;

  constructor(
    readonly bucket: string,
    private readonly options: S3BlobStoreOptions,
  ) {
    super("S3", `bucket "${bucket}"`, "SHA-256");
    this.url = `s3://${bucket}`;
    // Servers that ignore If-None-Match would overwrite: look first there, so that an existing
    // object is compared instead.
    this.looksFirst = !options.conditionalWrites;
  }

  protected async connect(): Promise<Opened> {
    const sdk = await import("@aws-sdk/client-s3");
    return { sdk, client: this.options.client ?? new sdk.S3Client(this.options.clientConfig) };
  }

  protected async write({ sdk, client }: Opened, key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    const { serverSideEncryption, kmsKeyId } = this.options;
    await client.send(
      new sdk.PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: options.contentType ?? "application/octet-stream",
        // S3 checks the body against it and keeps it, so a later HeadObject can compare without a download.
        ChecksumAlgorithm: "SHA256",
        ChecksumSHA256: Buffer.from(options.sha256, "hex").toString("base64"),
        IfNoneMatch: "*",
        ...(serverSideEncryption === undefined ? {} : { ServerSideEncryption: serverSideEncryption }),
        ...(kmsKeyId === undefined ? {} : { SSEKMSKeyId: kmsKeyId }),
      }),
    );
  }

  protected async read({ sdk, client }: Opened, key: string): Promise<Uint8Array> {
    const response = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return readBody(response.Body as AsyncIterable<Uint8Array>, response.ContentLength);
  }

  protected async stat({ sdk, client }: Opened, key: string): Promise<StoredObject> {
    const response = await client.send(
      new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: "ENABLED" }),
    );
    // A multipart upload's checksum is of its parts ("…-3"), not of the object: only a whole one compares.
    const whole = response.ChecksumType !== "COMPOSITE";
    return {
      sizeBytes: response.ContentLength ?? 0,
      sha256: whole ? base64ToHex(response.ChecksumSHA256, 32) : undefined,
    };
  }

  protected async keys({ sdk, client }: Opened, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const page of sdk.paginateListObjectsV2({ client }, { Bucket: this.bucket, Prefix: prefix })) {
      for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
    }
    return keys;
  }

  protected async remove({ sdk, client }: Opened, key: string): Promise<void> {
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** The one place for S3's error names and statuses. */
  protected classify(error: unknown, operation: Operation): Failure {
    const name = errorName(error);
    const status = httpStatus(error);
    const said = status === undefined ? ((error as Error)?.message ?? name) : `${status} ${name}`;
    const kind = ((): FailureKind => {
      if (name === "NoSuchBucket") return "bucket-missing";
      // 412: another writer created it first; 409: a concurrent conditional write is in flight.
      if (operation === "put" && (status === 412 || status === 409)) return "exists";
      if (name === "NoSuchKey" || status === 404) return "not-found";
      if (REJECTED_CREDENTIALS.includes(name)) return "credentials";
      if (name === "AccessDenied" || status === 403) return "access";
      if (name === "CredentialsProviderError" || /credential/i.test((error as Error)?.message ?? "")) {
        return "credentials";
      }
      if (status !== undefined && (status >= 500 || status === 429 || name === "SlowDown")) return "unavailable";
      if (name === "BadDigest") return "integrity";
      return "other";
    })();
    return { kind, status, said };
  }

  protected readonly hints: Hints = {
    bucketMissing: () => {
      const region = this.options.clientConfig.region ?? process.env.AWS_REGION;
      return {
        where: `in ${region ?? "the configured region"}`,
        create: `aws s3 mb s3://${this.bucket} --region ${region ?? "<region>"}`,
        fix: "bucket and region",
      };
    },
    access: (operation, key) => ({
      permission: ACTIONS[operation],
      resource: operation === "list" ? `arn:aws:s3:::${this.bucket}` : `arn:aws:s3:::${this.bucket}/${key}`,
      advice: "Grant it to the role or user this runs as (check the bucket policy and KMS key policy too).",
    }),
    credentials: (failure) =>
      failure.status !== undefined
        ? {
            problem: "the AWS credentials were rejected",
            advice:
              "Check the access key, secret and session token where this runs, or let the default chain find a role.",
          }
        : {
            problem: "no AWS credentials found",
            advice:
              "The SDK looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared files (~/.aws/credentials, ~/.aws/config), SSO, web identity, and the ECS/EC2 metadata endpoints. Configure one of them where this runs.",
          },
    unavailable: (error) => {
      const attempts = (error as { $metadata?: { attempts?: number } })?.$metadata?.attempts;
      return `after ${attempts ?? "several"} attempts (the service is throttling or unavailable). Try again later, or raise the client's maxAttempts.`;
    },
    failed: (_failure, error) => `: ${errorName(error)}: ${(error as Error)?.message}`,
  };
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function errorName(error: unknown): string {
  return (error as { name?: string; Code?: string })?.Code ?? (error as Error)?.name ?? "Error";
}
