import { createHash } from "node:crypto";
import type { ContainerClient } from "@azure/storage-blob";
import type { PutOptions } from "@tern/core/plugin";
import {
  type AzureConnection,
  connectContainer,
  DEFAULT_CONNECTION_STRING_ENV,
  knownAccount,
} from "./azure-connection.js";
import { readBody } from "./body.js";
import {
  CloudBlobStore,
  type Failure,
  type FailureKind,
  firstLine,
  type Hints,
  type Operation,
  type StoredObject,
} from "./cloud-blob-store.js";

/** Azure's names of the REST operations, as they appear in its logs and RBAC documentation. */
const OPERATION_NAMES: Record<Operation, string> = {
  put: "Put Blob",
  get: "Get Blob",
  head: "Get Blob Properties",
  list: "List Blobs",
  delete: "Delete Blob",
};

const DENIED = ["AuthorizationFailure", "AuthenticationFailed", "AuthorizationPermissionMismatch"];

/**
 * The `BlobStore` over one container. The SDK is imported and the client built on first use; a
 * failure to build it (no connection string yet) is not kept, so a later call can succeed.
 */
export class AzureBlobStore extends CloudBlobStore<ContainerClient> {
  protected readonly looksFirst = false;
  #account: string | undefined;

  constructor(
    readonly container: string,
    private readonly connection: AzureConnection,
  ) {
    super("Azure", `container "${container}"`, "MD5");
    this.#account = knownAccount(connection);
  }

  /** `azure://<account>/<container>`; the container alone until the account is known. */
  get url(): string {
    return this.#account ? `azure://${this.#account}/${this.container}` : `azure://${this.container}`;
  }

  protected override operationName(operation: Operation): string {
    return OPERATION_NAMES[operation];
  }

  protected async connect(): Promise<ContainerClient> {
    const client = await connectContainer(this.connection, this.container);
    if (client.accountName) this.#account = client.accountName;
    return client;
  }

  protected async write(client: ContainerClient, key: string, body: Uint8Array, options: PutOptions): Promise<void> {
    // One Put Blob up to 256 MiB (uploadData's single-shot limit), so ifNoneMatch makes the create
    // atomic. The MD5 is stored with the blob and checked against the body received (azurite
    // rejects a mismatch; the test "a body changed in transit is refused" shows it).
    await client.getBlockBlobClient(key).uploadData(body, {
      conditions: { ifNoneMatch: "*" },
      blobHTTPHeaders: {
        blobContentType: options.contentType ?? "application/octet-stream",
        blobContentMD5: createHash("md5").update(body).digest(),
      },
    });
  }

  protected async read(client: ContainerClient, key: string): Promise<Uint8Array> {
    const response = await client.getBlobClient(key).download();
    return readBody(response.readableStreamBody as AsyncIterable<Uint8Array> | undefined, response.contentLength);
  }

  protected async stat(client: ContainerClient, key: string): Promise<StoredObject> {
    const properties = await client.getBlobClient(key).getProperties();
    // Put Blob stores the MD5 of the body; a blob committed from blocks has none unless its writer set one.
    const md5 = properties.contentMD5;
    return {
      sizeBytes: properties.contentLength ?? 0,
      md5: md5?.byteLength === 16 ? Buffer.from(md5).toString("hex") : undefined,
    };
  }

  protected async keys(client: ContainerClient, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const blob of client.listBlobsFlat(prefix === "" ? {} : { prefix })) keys.push(blob.name);
    return keys;
  }

  protected async remove(client: ContainerClient, key: string): Promise<void> {
    // A blob with snapshots cannot be deleted alone (409 SnapshotsPresent); they go with it.
    await client.getBlobClient(key).deleteIfExists({ deleteSnapshots: "include" });
  }

  /** The one place for Azure's statuses and error codes. */
  protected classify(error: unknown, operation: Operation): Failure {
    const status = restStatus(error);
    const code = restCode(error);
    const summary = [status, code].filter((part) => part !== undefined).join(" ");
    const kind = ((): FailureKind => {
      if (code === "ContainerNotFound") return "bucket-missing";
      // 409 BlobAlreadyExists: the key exists, maybe written by a concurrent writer a moment ago.
      // 412 ConditionNotMet is how some Azure-compatible servers answer the same If-None-Match.
      if (operation === "put" && ((status === 409 && code === "BlobAlreadyExists") || status === 412)) return "exists";
      if (code === "BlobNotFound" || status === 404) return "not-found";
      if (status === 403 || (code !== undefined && DENIED.includes(code))) return "access";
      if (isCredentialError(error)) return "credentials";
      if ((status !== undefined && (status >= 500 || status === 429)) || code === "ServerBusy") return "unavailable";
      if (code === "REQUEST_SEND_ERROR") return "unavailable";
      // Azure answers Md5Mismatch; azurite answers 400 InvalidOperation "Provided contentMD5 doesn't match."
      if (code === "Md5Mismatch" || (status === 400 && /md5/i.test(firstLine(error)))) return "integrity";
      return "other";
    })();
    return { kind, status, said: status === undefined ? firstLine(error) : summary };
  }

  protected readonly hints: Hints = {
    bucketMissing: () => {
      const account = this.#account ?? "<account>";
      return {
        where: `in storage account "${account}"`,
        create: `az storage container create --name ${this.container} --account-name ${account}`,
        fix: "container and account",
      };
    },
    access: (operation, _key, where) => {
      const write = operation === "put" || operation === "delete";
      const connection = this.connection;
      const check =
        connection.kind === "accountUrl"
          ? `Give the identity DefaultAzureCredential uses the role ${write ? "Storage Blob Data Contributor" : "Storage Blob Data Reader"} on the container or account (role assignments take a few minutes to apply).`
          : connection.kind === "client"
            ? "Check the credential of the client given to AzureStorage."
            : `Check that the account key in the connection string (from ${connection.kind === "env" ? connection.env : "option connectionString"}) is current, or that its SAS has not expired and allows ${write ? "write and delete" : "read and list"} on the container.`;
      return {
        permission: OPERATION_NAMES[operation],
        resource: where,
        advice: `${check} Also check the account's firewall and network rules.`,
      };
    },
    credentials: () => ({
      problem: "DefaultAzureCredential found no credential",
      advice:
        "It tries the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH), workload identity, managed identity, " +
        `Azure CLI (az login), Azure PowerShell and Azure Developer CLI. Configure one where this runs, or use a connection string in ${DEFAULT_CONNECTION_STRING_ENV}.`,
    }),
    unavailable: () =>
      "after the SDK's retries (the service is unavailable or throttling, or the endpoint is unreachable). Try again later; check the endpoint and the network if it persists.",
    failed: (_failure, error) => {
      const summary = [restStatus(error), restCode(error)].filter((part) => part !== undefined).join(" ");
      return `${summary === "" ? "" : ` with ${summary}`}: ${firstLine(error)}`;
    },
  };
}

/** The HTTP status of an SDK `RestError`, if it has one (network errors have none). */
function restStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/**
 * Azure's error code. Responses without a body (HEAD) carry it only in the `x-ms-error-code`
 * header, which the SDK puts in `details.errorCode` and not in `code`.
 */
function restCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; details?: { errorCode?: unknown } } | undefined;
  const code = e?.details?.errorCode ?? e?.code;
  return typeof code === "string" && code !== "" ? code : undefined;
}

function isCredentialError(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  return (
    name === "CredentialUnavailableError" || name === "AggregateAuthenticationError" || name === "AuthenticationError"
  );
}
