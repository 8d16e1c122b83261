/**
 * `AzureStorage`: tern flows in Azure Blob Storage.
 *
 * @example
 * import { AzureStorage } from "@tern/storage-cloud/azure";
 * // Reads AZURE_STORAGE_CONNECTION_STRING where the flow is registered and where it runs.
 * new Flow("etl", { storage: new AzureStorage({ container: "flows" }) }, build);
 */
import { createHash } from "node:crypto";
import type { ContainerClient } from "@azure/storage-blob";
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
import { checkOptions, compareExisting, readBody } from "./shared.js";

/** The environment variable a connection string is read from unless `connectionStringEnv` names another. */
export const DEFAULT_CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING";

/**
 * Options of {@link AzureStorage}. Give at most one of `connectionString`, `accountUrl` and `client`;
 * with none, the connection string is read from the environment variable `connectionStringEnv`
 * when the storage is first used.
 */
export interface AzureStorageOptions extends StorageOptions {
  /** The container (it must exist): 3-63 lowercase letters, digits and single hyphens. */
  readonly container: string;
  /**
   * A connection string for this process only. It is never written to the storage's JSON: copies
   * rebuilt from JSON (an agent, a runner) read `connectionStringEnv` where they run instead.
   * @default the value of the environment variable `connectionStringEnv`, read on first use
   */
  readonly connectionString?: string;
  /**
   * The environment variable holding the connection string, here and wherever the storage is
   * rebuilt from its JSON.
   * @default "AZURE_STORAGE_CONNECTION_STRING"
   */
  readonly connectionStringEnv?: string;
  /**
   * The account's blob endpoint, e.g. `https://myaccount.blob.core.windows.net`, authenticated
   * with `DefaultAzureCredential` from `@azure/identity` (install it where this runs). No SAS
   * token: the URL is stored in the storage's JSON.
   * @default none: a connection string is used
   */
  readonly accountUrl?: string;
  /**
   * A client of the container to use as is (its credentials are its own). Never serialized: the
   * storage's JSON records `connectionStringEnv`, so copies rebuilt elsewhere read that variable.
   */
  readonly client?: ContainerClient;
}

const OPTION_KEYS = [
  "prefix",
  "external",
  "container",
  "connectionString",
  "connectionStringEnv",
  "accountUrl",
  "client",
];

/** Flows stored in an Azure Blob Storage container, content-addressed under the storage's prefix. */
export class AzureStorage extends Storage {
  static override readonly type: string = "AzureStorage";
  readonly container: string;
  readonly accountUrl: string | undefined;
  readonly connectionStringEnv: string;
  readonly #connectionString: string | undefined;
  readonly #client: ContainerClient | undefined;

  constructor(options: AzureStorageOptions) {
    checkOptions("AzureStorage", options, OPTION_KEYS, ["container"]);
    const { container, connectionString, connectionStringEnv, accountUrl, client } = options;
    if (container.length < 3 || container.length > 63 || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(container)) {
      throw optionError(
        `container ${JSON.stringify(container)} is not a valid container name (3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit).`,
      );
    }
    const given = (["connectionString", "accountUrl", "client"] as const).filter((k) => options[k] !== undefined);
    if (given.length > 1)
      throw optionError(`give one of connectionString, accountUrl or client, not ${given.join(" and ")}.`);
    if (connectionString !== undefined && (typeof connectionString !== "string" || connectionString.trim() === "")) {
      throw optionError("connectionString must be a non-empty string.");
    }
    if (connectionStringEnv !== undefined) {
      if (typeof connectionStringEnv !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(connectionStringEnv)) {
        throw optionError(
          `connectionStringEnv ${JSON.stringify(connectionStringEnv)} is not an environment variable name.`,
        );
      }
      if (accountUrl !== undefined)
        throw optionError("connectionStringEnv does not apply with accountUrl; give one of them.");
    }
    if (accountUrl !== undefined) checkAccountUrl(accountUrl);
    if (client !== undefined) {
      if (typeof client !== "object" || client === null || typeof client.getBlockBlobClient !== "function") {
        throw optionError(
          "client must be a ContainerClient from @azure/storage-blob (from a BlobServiceClient, use getContainerClient(container)).",
        );
      }
      if (client.containerName !== container) {
        throw optionError(`client is a client of container "${client.containerName}" but container is "${container}".`);
      }
    }
    super(options);
    this.container = container;
    this.accountUrl = accountUrl?.replace(/\/+$/, "");
    this.connectionStringEnv = connectionStringEnv ?? DEFAULT_CONNECTION_STRING_ENV;
    this.#connectionString = connectionString;
    this.#client = client;
  }

  protected override createBlobStore(): BlobStore {
    const connection: AzureConnection =
      this.#client !== undefined
        ? { kind: "client", client: this.#client }
        : this.accountUrl !== undefined
          ? { kind: "accountUrl", accountUrl: this.accountUrl }
          : this.#connectionString !== undefined
            ? { kind: "connectionString", connectionString: this.#connectionString }
            : { kind: "env", env: this.connectionStringEnv };
    return new AzureBlobStore(this.container, connection);
  }

  protected override jsonOptions(): Record<string, JsonValue> {
    if (this.accountUrl !== undefined) return { container: this.container, accountUrl: this.accountUrl };
    return { container: this.container, connectionStringEnv: this.connectionStringEnv };
  }
}

function optionError(message: string): TernError {
  return new TernError("STORAGE_OPTIONS", `AzureStorage: ${message}`);
}

function checkAccountUrl(accountUrl: unknown): void {
  if (typeof accountUrl !== "string" || !URL.canParse(accountUrl)) {
    throw optionError(
      `accountUrl ${JSON.stringify(accountUrl)} is not a URL; give the account's blob endpoint, e.g. https://myaccount.blob.core.windows.net.`,
    );
  }
  const url = new URL(accountUrl);
  // The options are stored in manifests and flow versions: a SAS token there would be a leaked credential.
  // The URL is deliberately not echoed, so the token does not reach logs either.
  if (url.search !== "" || url.username !== "" || url.password !== "" || url.hash !== "") {
    throw optionError(
      "accountUrl must not carry a SAS token, a query string or user info: SAS tokens are credentials, and the storage's options are saved in manifests. " +
        `Put a SAS connection string (BlobEndpoint=...;SharedAccessSignature=...) in ${DEFAULT_CONNECTION_STRING_ENV} where the code runs instead, or grant the identity access and keep accountUrl bare.`,
    );
  }
  if (url.protocol !== "https:") {
    throw optionError(`accountUrl ${JSON.stringify(accountUrl)} must use https: Azure sends tokens only over TLS.`);
  }
  if (!isPathStyleHost(url.hostname) && url.pathname !== "/") {
    throw optionError(
      `accountUrl ${JSON.stringify(accountUrl)} has a path; give the account's endpoint only (https://<account>.blob.core.windows.net) and the container in "container".`,
    );
  }
}

/** Where an {@link AzureBlobStore} gets its client. */
export type AzureConnection =
  | { readonly kind: "client"; readonly client: ContainerClient }
  | { readonly kind: "connectionString"; readonly connectionString: string }
  | { readonly kind: "env"; readonly env: string }
  | { readonly kind: "accountUrl"; readonly accountUrl: string };

type Operation = "put" | "get" | "head" | "list" | "delete";

/** Azure's names of the REST operations, as they appear in its logs and RBAC documentation. */
const OPERATION_NAMES: Record<Operation, string> = {
  put: "Put Blob",
  get: "Get Blob",
  head: "Get Blob Properties",
  list: "List Blobs",
  delete: "Delete Blob",
};

/** The subset of `@azure/identity` tern uses; the package is optional, so it is typed here. */
interface IdentityModule {
  DefaultAzureCredential: new () => {
    getToken(
      scopes: string | string[],
      options?: object,
    ): Promise<{ token: string; expiresOnTimestamp: number } | null>;
  };
}

/**
 * The `BlobStore` over one container. The SDK is imported and the client built on first use; a
 * failure to build it (no connection string yet) is not cached, so a later call can succeed.
 */
export class AzureBlobStore implements BlobStore {
  #client: Promise<ContainerClient> | undefined;
  #account: string | undefined;

  constructor(
    readonly container: string,
    private readonly connection: AzureConnection,
  ) {
    this.#account = knownAccount(connection);
  }

  /** `azure://<account>/<container>`; the container alone until the account is known. */
  get url(): string {
    return this.#account ? `azure://${this.#account}/${this.container}` : `azure://${this.container}`;
  }

  describe(key: string): string {
    return `${this.url}/${key}`;
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<"created" | "exists"> {
    checkKey(key);
    const client = await this.#open();
    try {
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
      return "created";
    } catch (error) {
      const status = restStatus(error);
      // 409 BlobAlreadyExists: the key exists, maybe written by a concurrent writer a moment ago.
      // 412 ConditionNotMet is how some Azure-compatible servers answer the same If-None-Match.
      if ((status === 409 && restCode(error) === "BlobAlreadyExists") || status === 412) {
        return compareExisting(this, key, options.sha256);
      }
      throw this.#error("put", key, error);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    const client = await this.#open();
    try {
      const response = await client.getBlobClient(key).download();
      return await readBody(
        response.readableStreamBody as AsyncIterable<Uint8Array> | undefined,
        response.contentLength,
      );
    } catch (error) {
      throw this.#error("get", key, error);
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    checkKey(key);
    const client = await this.#open();
    try {
      const properties = await client.getBlobClient(key).getProperties();
      return { sizeBytes: properties.contentLength ?? 0 };
    } catch (error) {
      if (restStatus(error) === 404 && restCode(error) !== "ContainerNotFound") return undefined;
      throw this.#error("head", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const client = await this.#open();
    const keys: string[] = [];
    try {
      for await (const blob of client.listBlobsFlat(prefix === "" ? {} : { prefix })) keys.push(blob.name);
    } catch (error) {
      throw this.#error("list", prefix, error);
    }
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const client = await this.#open();
    try {
      // A blob with snapshots cannot be deleted alone (409 SnapshotsPresent); they go with it.
      await client.getBlobClient(key).deleteIfExists({ deleteSnapshots: "include" });
    } catch (error) {
      throw this.#error("delete", key, error);
    }
  }

  #open(): Promise<ContainerClient> {
    this.#client ??= this.#connect().then(
      (client) => {
        if (client.accountName) this.#account = client.accountName;
        return client;
      },
      (error: unknown) => {
        this.#client = undefined;
        throw error;
      },
    );
    return this.#client;
  }

  async #connect(): Promise<ContainerClient> {
    const connection = this.connection;
    if (connection.kind === "client") return connection.client;
    if (connection.kind === "accountUrl") {
      let identity: IdentityModule;
      try {
        // A variable specifier: @azure/identity is optional and not a dependency of this package.
        const specifier = "@azure/identity";
        identity = (await import(/* @vite-ignore */ specifier)) as IdentityModule;
      } catch (error) {
        throw new TernError(
          "STORAGE_CREDENTIALS",
          `AzureStorage: accountUrl ${connection.accountUrl} authenticates with DefaultAzureCredential from @azure/identity, which could not be loaded (${firstLine(error)}). ` +
            `Install it where this runs (pnpm add @azure/identity), or use a connection string in ${DEFAULT_CONNECTION_STRING_ENV} instead of accountUrl.`,
          { cause: error },
        );
      }
      const { ContainerClient } = await import("@azure/storage-blob");
      return new ContainerClient(`${connection.accountUrl}/${this.container}`, new identity.DefaultAzureCredential());
    }
    const connectionString =
      connection.kind === "env" ? this.#connectionStringFromEnv(connection.env) : connection.connectionString;
    const from = connection.kind === "env" ? `environment variable ${connection.env}` : "option connectionString";
    // Named before the SDK sees it: its parser fails on a part without "=" with an unhelpful
    // message. Only the part's name (before "=") or position is given, never a value.
    const parts = connectionString.split(";").filter((part) => part.trim() !== "");
    const bad = parts.findIndex((part) => !/^[A-Za-z]+=/.test(part.trim()));
    if (bad >= 0) {
      throw new TernError(
        "STORAGE_CREDENTIALS",
        `AzureStorage: the connection string from ${from} is not valid: part ${bad + 1} of ${parts.length} is not of the form Name=value (for example AccountName=..., AccountKey=..., BlobEndpoint=...). Copy it again from the storage account's Access keys.`,
      );
    }
    const { ContainerClient } = await import("@azure/storage-blob");
    try {
      return new ContainerClient(connectionString, this.container);
    } catch (error) {
      // The SDK's messages name the faulty part, never its value; the string itself is not echoed.
      throw new TernError(
        "STORAGE_CREDENTIALS",
        `AzureStorage: the connection string from ${from} is not valid (${firstLine(error)}). Copy it again from the storage account's Access keys.`,
        { cause: error },
      );
    }
  }

  #connectionStringFromEnv(env: string): string {
    const value = process.env[env];
    if (value === undefined || value.trim() === "") {
      throw new TernError(
        "STORAGE_CREDENTIALS",
        `AzureStorage: no Azure credentials for container "${this.container}": the environment variable ${env} is not set. ` +
          "Set it to the storage account's connection string where this runs (Azure portal: Storage account > Access keys), " +
          "or give AzureStorage a connectionString (used in this process only), an accountUrl (authenticated with DefaultAzureCredential), or a client.",
      );
    }
    return value;
  }

  /** Maps an SDK error to one that says what failed and what to do. The one place for Azure's codes. */
  #error(operation: Operation, key: string, error: unknown): Error {
    const status = restStatus(error);
    const code = restCode(error);
    const name = OPERATION_NAMES[operation];
    const target = operation === "list" ? `${this.url} (prefix "${key}")` : this.describe(key);
    const account = this.#account ?? "<account>";
    const summary = [status, code].filter((part) => part !== undefined).join(" ");
    if (code === "ContainerNotFound") {
      return new TernError(
        "STORAGE_BUCKET",
        `Azure container "${this.container}" does not exist in storage account "${account}". Create it ` +
          `(az storage container create --name ${this.container} --account-name ${account}) or fix the storage's container and account.`,
        { cause: error },
      );
    }
    if (code === "BlobNotFound" || (operation === "get" && status === 404)) {
      return new NotFoundError("blob", key, `${this.describe(key)} does not exist.`, { cause: error });
    }
    if (
      status === 403 ||
      code === "AuthorizationFailure" ||
      code === "AuthenticationFailed" ||
      code === "AuthorizationPermissionMismatch"
    ) {
      const write = operation === "put" || operation === "delete";
      const check =
        this.connection.kind === "accountUrl"
          ? `Give the identity DefaultAzureCredential uses the role ${write ? "Storage Blob Data Contributor" : "Storage Blob Data Reader"} on the container or account (role assignments take a few minutes to apply).`
          : this.connection.kind === "client"
            ? "Check the credential of the client given to AzureStorage."
            : `Check that the account key in the connection string (from ${this.connection.kind === "env" ? this.connection.env : "option connectionString"}) is current, or that its SAS has not expired and allows ${write ? "write and delete" : "read and list"} on the container.`;
      return new TernError(
        "STORAGE_ACCESS",
        `Azure denied ${name} on ${target} (${summary}). ${check} Also check the account's firewall and network rules.`,
        { cause: error },
      );
    }
    if (isCredentialError(error)) {
      return new TernError(
        "STORAGE_CREDENTIALS",
        `Azure ${name} ${target}: DefaultAzureCredential found no credential (${firstLine(error)}). It tries the environment ` +
          "(AZURE_TENANT_ID, AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH), workload identity, managed identity, " +
          `Azure CLI (az login), Azure PowerShell and Azure Developer CLI. Configure one where this runs, or use a connection string in ${DEFAULT_CONNECTION_STRING_ENV}.`,
        { cause: error },
      );
    }
    if (
      (status !== undefined && (status >= 500 || status === 429)) ||
      code === "ServerBusy" ||
      code === "REQUEST_SEND_ERROR"
    ) {
      const what =
        status === undefined ? `could not reach the service (${firstLine(error)})` : `failed with ${summary}`;
      return new TernError(
        "STORAGE_UNAVAILABLE",
        `Azure ${name} ${target} ${what} after the SDK's retries (the service is unavailable or throttling, or the endpoint is unreachable). ` +
          "Try again later; check the endpoint and the network if it persists.",
        { cause: error, retryable: true },
      );
    }
    // Azure answers Md5Mismatch; azurite answers 400 InvalidOperation "Provided contentMD5 doesn't match."
    if (code === "Md5Mismatch" || (status === 400 && /md5/i.test(firstLine(error)))) {
      return new TernError(
        "STORAGE_INTEGRITY",
        `Azure ${name} ${target}: the service received bytes whose MD5 differs from the one sent (${summary}); the upload was corrupted in transit and nothing was stored. Try again.`,
        { cause: error, retryable: true },
      );
    }
    return new TernError(
      "STORAGE",
      `Azure ${name} ${target} failed${summary === "" ? "" : ` with ${summary}`}: ${firstLine(error)}`,
      // No HTTP answer at all (a reset, a timeout, DNS): the network, not the request.
      { cause: error, retryable: status === undefined || status === 408 },
    );
  }
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

function firstLine(error: unknown): string {
  const message = (error as Error | undefined)?.message;
  return (typeof message === "string" && message !== "" ? message : String(error)).split("\n")[0]!.trim();
}

/** The account name, where it is known without building a client. */
function knownAccount(connection: AzureConnection): string | undefined {
  switch (connection.kind) {
    case "client":
      return connection.client.accountName || undefined;
    case "accountUrl":
      return accountFromUrl(connection.accountUrl);
    case "connectionString":
      return accountFromConnectionString(connection.connectionString);
    case "env":
      return accountFromConnectionString(process.env[connection.env]);
  }
}

function accountFromConnectionString(connectionString: string | undefined): string | undefined {
  if (connectionString === undefined) return undefined;
  const parts = new Map<string, string>();
  for (const part of connectionString.split(";")) {
    const equals = part.indexOf("=");
    if (equals > 0) parts.set(part.slice(0, equals).trim().toLowerCase(), part.slice(equals + 1).trim());
  }
  if (parts.get("usedevelopmentstorage") === "true") return "devstoreaccount1";
  const endpoint = parts.get("blobendpoint");
  return parts.get("accountname") || (endpoint === undefined ? undefined : accountFromUrl(endpoint));
}

/** `https://<account>.blob.core.windows.net`, or `http://127.0.0.1:10000/<account>` for emulators. */
function accountFromUrl(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined;
  const url = new URL(value);
  if (isPathStyleHost(url.hostname)) return url.pathname.split("/")[1] || undefined;
  return url.hostname.split(".")[0] || undefined;
}

/** Emulators and IP endpoints put the account in the path instead of the host name. */
function isPathStyleHost(hostname: string): boolean {
  return hostname === "localhost" || /^\d+\.\d+\.\d+\.\d+$/.test(hostname) || hostname.startsWith("[");
}

registerStorageType(AzureStorage.type, (options) => new AzureStorage(options as unknown as AzureStorageOptions));
