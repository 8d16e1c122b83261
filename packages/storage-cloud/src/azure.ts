/**
 * `AzureStorage`: tern flows in Azure Blob Storage.
 *
 * @example
 * import { AzureStorage } from "@tern/storage-cloud/azure";
 * // Reads AZURE_STORAGE_CONNECTION_STRING where the flow is registered and where it runs.
 * new Flow("etl", { storage: new AzureStorage({ container: "flows" }) }, build);
 */
import type { ContainerClient } from "@azure/storage-blob";
import { Storage, type StorageOptions } from "@tern/core";
import { type BlobStore, type JsonValue, registerStorageType } from "@tern/core/plugin";
import * as z from "zod/mini";
import { AzureBlobStore } from "./azure-blob-store.js";
import { type AzureConnection, DEFAULT_CONNECTION_STRING_ENV, isPathStyleHost } from "./azure-connection.js";
import { checkedString, givenClient, optionsCheck, rule } from "./options.js";

export { AzureBlobStore } from "./azure-blob-store.js";
export { type AzureConnection, DEFAULT_CONNECTION_STRING_ENV } from "./azure-connection.js";

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

const CONNECTIONS = ["connectionString", "accountUrl", "client"] as const;

const checkOptions = optionsCheck<AzureStorageOptions>("AzureStorage")(
  {
    container: checkedString((c) =>
      c.length >= 3 && c.length <= 63 && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(c)
        ? undefined
        : `container ${JSON.stringify(c)} is not a valid container name (3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit).`,
    ),
    connectionString: z.optional(
      z.string().check(rule((v) => v.trim() !== "", "connectionString must be a non-empty string.")),
    ),
    connectionStringEnv: z.optional(
      checkedString((v) =>
        /^[A-Za-z_][A-Za-z0-9_]*$/.test(v)
          ? undefined
          : `connectionStringEnv ${JSON.stringify(v)} is not an environment variable name.`,
      ),
    ),
    accountUrl: z.optional(checkedString(accountUrlProblem)),
    client: givenClient<ContainerClient>(
      "getBlockBlobClient",
      "client must be a ContainerClient from @azure/storage-blob (from a BlobServiceClient, use getContainerClient(container)).",
    ),
  },
  rule(
    (o) => CONNECTIONS.filter((k) => o[k] !== undefined).length <= 1,
    (o) =>
      `give one of connectionString, accountUrl or client, not ${CONNECTIONS.filter((k) => o[k] !== undefined).join(" and ")}.`,
  ),
  rule(
    (o) => o.connectionStringEnv === undefined || o.accountUrl === undefined,
    "connectionStringEnv does not apply with accountUrl; give one of them.",
  ),
  rule(
    (o) => o.client === undefined || o.client.containerName === o.container,
    (o) => `client is a client of container "${o.client?.containerName}" but container is "${o.container}".`,
  ),
);

// register()'s options for a default AzureStorage (TERN_DEFAULT_STORAGE=AzureStorage) are typed once this module is imported.
declare module "@tern/core/plugin" {
  interface StorageOptionsByType {
    AzureStorage: AzureStorageOptions;
  }
}

/** Flows stored in an Azure Blob Storage container, content-addressed under the storage's prefix. */
export class AzureStorage extends Storage {
  static override readonly type: string = "AzureStorage";
  readonly container: string;
  readonly accountUrl: string | undefined;
  readonly connectionStringEnv: string;
  readonly #connectionString: string | undefined;
  readonly #client: ContainerClient | undefined;

  constructor(options: AzureStorageOptions) {
    const { container, connectionString, connectionStringEnv, accountUrl, client } = checkOptions(options);
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

/** What is wrong with an account URL, or `undefined` when it is an account's https endpoint. */
function accountUrlProblem(accountUrl: string): string | undefined {
  if (!URL.canParse(accountUrl)) {
    return `accountUrl ${JSON.stringify(accountUrl)} is not a URL; give the account's blob endpoint, e.g. https://myaccount.blob.core.windows.net.`;
  }
  const url = new URL(accountUrl);
  // The options are stored in manifests and flow versions: a SAS token there would be a leaked credential.
  // The URL is deliberately not echoed, so the token does not reach logs either.
  if (url.search !== "" || url.username !== "" || url.password !== "" || url.hash !== "") {
    return (
      "accountUrl must not carry a SAS token, a query string or user info: SAS tokens are credentials, and the storage's options are saved in manifests. " +
      `Put a SAS connection string (BlobEndpoint=...;SharedAccessSignature=...) in ${DEFAULT_CONNECTION_STRING_ENV} where the code runs instead, or grant the identity access and keep accountUrl bare.`
    );
  }
  if (url.protocol !== "https:") {
    return `accountUrl ${JSON.stringify(accountUrl)} must use https: Azure sends tokens only over TLS.`;
  }
  if (!isPathStyleHost(url.hostname) && url.pathname !== "/") {
    return `accountUrl ${JSON.stringify(accountUrl)} has a path; give the account's endpoint only (https://<account>.blob.core.windows.net) and the container in "container".`;
  }
  return undefined;
}

registerStorageType(AzureStorage.type, (options) => new AzureStorage(options as unknown as AzureStorageOptions));
