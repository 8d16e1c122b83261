/** How an Azure container's client is made: a client given as is, a connection string, or an account URL. */
import type { ContainerClient } from "@azure/storage-blob";
import { TernError } from "@tern/core";
import { firstLine } from "./cloud-blob-store.js";

/** The environment variable a connection string is read from unless `connectionStringEnv` names another. */
export const DEFAULT_CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING";

/** Where an {@link AzureBlobStore} gets its client. */
export type AzureConnection =
  | { readonly kind: "client"; readonly client: ContainerClient }
  | { readonly kind: "connectionString"; readonly connectionString: string }
  | { readonly kind: "env"; readonly env: string }
  | { readonly kind: "accountUrl"; readonly accountUrl: string };

/** The subset of `@azure/identity` tern uses; the package is optional, so it is typed here. */
interface IdentityModule {
  DefaultAzureCredential: new () => {
    getToken(
      scopes: string | string[],
      options?: object,
    ): Promise<{ token: string; expiresOnTimestamp: number } | null>;
  };
}

/** The container's client; a connection string is read (from the environment) and checked here. */
export async function connectContainer(connection: AzureConnection, container: string): Promise<ContainerClient> {
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
    return new ContainerClient(`${connection.accountUrl}/${container}`, new identity.DefaultAzureCredential());
  }
  const connectionString =
    connection.kind === "env" ? connectionStringFromEnv(connection.env, container) : connection.connectionString;
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
    return new ContainerClient(connectionString, container);
  } catch (error) {
    // The SDK's messages name the faulty part, never its value; the string itself is not echoed.
    throw new TernError(
      "STORAGE_CREDENTIALS",
      `AzureStorage: the connection string from ${from} is not valid (${firstLine(error)}). Copy it again from the storage account's Access keys.`,
      { cause: error },
    );
  }
}

function connectionStringFromEnv(env: string, container: string): string {
  const value = process.env[env];
  if (value === undefined || value.trim() === "") {
    throw new TernError(
      "STORAGE_CREDENTIALS",
      `AzureStorage: no Azure credentials for container "${container}": the environment variable ${env} is not set. ` +
        "Set it to the storage account's connection string where this runs (Azure portal: Storage account > Access keys), " +
        "or give AzureStorage a connectionString (used in this process only), an accountUrl (authenticated with DefaultAzureCredential), or a client.",
    );
  }
  return value;
}

/** The account name, where it is known without building a client. */
export function knownAccount(connection: AzureConnection): string | undefined {
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
export function isPathStyleHost(hostname: string): boolean {
  return hostname === "localhost" || /^\d+\.\d+\.\d+\.\d+$/.test(hostname) || hostname.startsWith("[");
}
