/**
 * `GCSStorage`: tern flows in Google Cloud Storage.
 *
 * @example
 * import { GCSStorage } from "@tern/storage-cloud/gcs";
 * new Flow("etl", { storage: new GCSStorage({ bucket: "my-flows", projectId: "my-project" }) }, build);
 */
import type { Storage as GcsClient, StorageOptions as GcsClientOptions } from "@google-cloud/storage";
import { Storage, type StorageOptions } from "@tern/core";
import { type BlobStore, type JsonValue, registerStorageType } from "@tern/core/plugin";
import * as z from "zod/mini";
import { GCSBlobStore } from "./gcs-blob-store.js";
import { checkedString, clientOptions, givenClient, optionsCheck, rule } from "./options.js";

export { GCSBlobStore, type GCSBlobStoreOptions } from "./gcs-blob-store.js";

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

// Project IDs are 6-30 lowercase letters, digits and hyphens; old ones may carry a domain ("example.com:p").
const PROJECT_ID = /^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

const checkOptions = optionsCheck<GCSStorageOptions>("GCSStorage")(
  {
    bucket: checkedString((bucket) => {
      const problem = bucketNameProblem(bucket);
      return problem === undefined
        ? undefined
        : `bucket ${JSON.stringify(bucket)} is not a valid Cloud Storage bucket name: ${problem} (see https://cloud.google.com/storage/docs/buckets#naming).`;
    }),
    projectId: z.optional(z.string()),
    storage: givenClient<GcsClient>(
      "bucket",
      "storage must be a Storage client from @google-cloud/storage (new Storage(...)).",
    ),
    storageOptions: clientOptions<GcsClientOptions>(
      "storageOptions",
      "@google-cloud/storage",
      "apiEndpoint",
      (options) => options.apiEndpoint,
    ),
  },
  rule(
    (o) => o.storage === undefined || o.storageOptions === undefined,
    "give either storage or storageOptions, not both.",
  ),
  rule(
    (o) => {
      const projectId = o.projectId ?? o.storageOptions?.projectId;
      return projectId === undefined || PROJECT_ID.test(String(projectId));
    },
    (o) =>
      `projectId ${JSON.stringify(o.projectId ?? o.storageOptions?.projectId)} is not a Google Cloud project ID (6-30 lowercase letters, digits and hyphens, starting with a letter).`,
  ),
);

// register()'s options for a default GCSStorage (TERN_DEFAULT_STORAGE=GCSStorage) are typed once this module is imported.
declare module "@tern/core/plugin" {
  interface StorageOptionsByType {
    GCSStorage: GCSStorageOptions;
  }
}

/** Flows stored in a Cloud Storage bucket, content-addressed under the storage's prefix. */
export class GCSStorage extends Storage {
  static override readonly type: string = "GCSStorage";
  readonly bucket: string;
  readonly projectId: string | undefined;
  readonly #storage: GcsClient | undefined;
  readonly #storageOptions: GcsClientOptions | undefined;

  constructor(options: GCSStorageOptions) {
    super(checkOptions(options));
    const projectId = options.projectId ?? options.storageOptions?.projectId;
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

registerStorageType(GCSStorage.type, (options) => new GCSStorage(options as unknown as GCSStorageOptions));
