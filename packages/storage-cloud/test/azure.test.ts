import { createHash } from "node:crypto";
import { BlobClient, ContainerClient, RestError } from "@azure/storage-blob";
import { sha256Hex, storageFromJSON } from "@tern/core/plugin";
import { blobStoreContract } from "@tern/core/testing";
import { AzureBlobStore, AzureStorage } from "@tern/storage-cloud/azure";
import { AZURITE_ACCOUNT, type AzuriteServer, startAzurite } from "@tern/test-support/servers";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";

const CONTAINER = "tern-flows";
const ENV = "AZURE_STORAGE_CONNECTION_STRING";
let server: AzuriteServer;

beforeAll(async () => {
  server = await startAzurite();
  await new ContainerClient(server.connectionString(), CONTAINER).create();
}, 60_000);
afterAll(() => server?.stop());

// Tests below set and delete the variable; each starts from the value the run began with.
const envBefore = process.env[ENV];
afterEach(() => {
  if (envBefore === undefined) delete process.env[ENV];
  else process.env[ENV] = envBefore;
});

const bytes = (text: string) => new TextEncoder().encode(text);
const putOptions = (body: Uint8Array) => ({ sha256: sha256Hex(body) });

blobStoreContract(
  "AzureBlobStore on azurite",
  () => new AzureStorage({ container: CONTAINER, connectionString: server.connectionString() }).blobs,
  { timeoutMs: 30_000 },
);

describe("AzureStorage on azurite", () => {
  const storage = (options: Partial<ConstructorParameters<typeof AzureStorage>[0]> = {}) =>
    new AzureStorage({ container: CONTAINER, connectionString: server.connectionString(), ...options });

  it("stores the content type and the body's MD5, and names the account in its URL", async () => {
    const store = storage().blobs;
    const key = `shape-${Date.now()}/doc.json`;
    const body = bytes('{"a":1}');
    expect(await store.put(key, body, { sha256: sha256Hex(body), contentType: "application/json" })).toBe("created");
    const properties = await new ContainerClient(server.connectionString(), CONTAINER)
      .getBlobClient(key)
      .getProperties();
    expect(properties.contentType).toBe("application/json");
    expect(Buffer.from(properties.contentMD5 ?? []).toString("hex")).toBe(createHash("md5").update(body).digest("hex"));
    expect(store.url).toBe(`azure://${AZURITE_ACCOUNT.name}/${CONTAINER}`);
    expect(store.describe(key)).toBe(`azure://${AZURITE_ACCOUNT.name}/${CONTAINER}/${key}`);
  });

  it("sends a create-if-absent condition and an MD5 the server checks: a body changed in transit is refused and not stored", async () => {
    const real = new ContainerClient(server.connectionString(), CONTAINER);
    const sent: unknown[] = [];
    // Passes the driver's options through unchanged, but flips one byte of the body on the way.
    const corrupting = {
      accountName: real.accountName,
      containerName: real.containerName,
      getBlockBlobClient: (name: string) => ({
        uploadData: (data: Uint8Array, options: unknown) => {
          sent.push(options);
          const changed = Uint8Array.from(data);
          changed[0] = (changed[0] ?? 0) ^ 0xff;
          return real.getBlockBlobClient(name).uploadData(changed, options as never);
        },
      }),
      getBlobClient: (name: string) => real.getBlobClient(name),
    } as unknown as ContainerClient;
    const store = new AzureStorage({ container: CONTAINER, client: corrupting }).blobs;
    const key = `corrupt-${Date.now()}/bundle.mjs`;
    const body = bytes("export const flow = 1;");
    const attempt = store.put(key, body, putOptions(body));
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_INTEGRITY" });
    await expect(attempt).rejects.toThrow(/MD5 differs from the one sent .*nothing was stored/);
    expect(sent[0]).toMatchObject({ conditions: { ifNoneMatch: "*" } });
    expect(await store.head(key)).toBeUndefined();
  });

  it("says how to create a missing container, from every operation, and head does not report it as a missing key", async () => {
    const store = storage({ container: "no-such-container" }).blobs;
    const message =
      /Azure container "no-such-container" does not exist in storage account "devstoreaccount1"\. Create it \(az storage container create --name no-such-container --account-name devstoreaccount1\)/;
    const body = bytes("x");
    await expect(store.get("flows/x.json")).rejects.toThrow(message);
    await expect(store.head("flows/x.json")).rejects.toThrow(message);
    await expect(store.put("flows/x.json", body, putOptions(body))).rejects.toThrow(message);
    await expect(store.list("flows/")).rejects.toThrow(message);
    await expect(store.delete("flows/x.json")).rejects.toMatchObject({ code: "STORAGE_BUCKET" });
  });

  it("maps a wrong account key to an access-denied error naming the operation and the object, without the key", async () => {
    const wrongKey = Buffer.alloc(64, 7).toString("base64");
    const store = storage({ connectionString: server.connectionString(wrongKey) }).blobs;
    const get = store.get("flows/x.json");
    await expect(get).rejects.toMatchObject({ code: "STORAGE_ACCESS" });
    await expect(get).rejects.toThrow(
      /^Azure denied Get Blob on azure:\/\/devstoreaccount1\/tern-flows\/flows\/x\.json \(403 AuthorizationFailure\)\. Check that the account key in the connection string \(from option connectionString\)/,
    );
    await expect(get).rejects.not.toThrow(wrongKey);
    // HEAD responses have no body; the code comes from a header, and a 403 must not read as "absent".
    await expect(store.head("flows/x.json")).rejects.toThrow(/Azure denied Get Blob Properties on/);
    const body = bytes("x");
    await expect(store.put("flows/x.json", body, putOptions(body))).rejects.toThrow(/Azure denied Put Blob on/);
  });

  it("compares an existing blob by the Content-MD5 azurite keeps, without downloading it", async () => {
    const store = storage().blobs;
    const key = `checksum-${Date.now()}/x.mjs`;
    const body = bytes("export const x = 1;");
    expect(await store.put(key, body, putOptions(body))).toBe("created");
    const downloads = vi.spyOn(BlobClient.prototype, "download");
    try {
      expect(await store.put(key, body, putOptions(body))).toBe("exists");
      const other = bytes("export const x = 2;");
      await expect(store.put(key, other, putOptions(other))).rejects.toThrow(/already exists with different content/);
      expect(await store.compareStored?.(key, body, sha256Hex(body))).toBe("same");
      expect(await store.compareStored?.(key, other, sha256Hex(other))).toBe("different");
      expect(downloads).not.toHaveBeenCalled();
      await store.get(key); // the spy sees downloads
      expect(downloads).toHaveBeenCalledTimes(1);
    } finally {
      downloads.mockRestore();
    }
  });

  it("downloads to compare a blob that has no Content-MD5 (committed from blocks)", async () => {
    const real = new ContainerClient(server.connectionString(), CONTAINER);
    let downloads = 0;
    // The real container, except that properties come without an MD5 and downloads are counted.
    const withoutMd5 = {
      accountName: real.accountName,
      containerName: real.containerName,
      getBlockBlobClient: (name: string) => real.getBlockBlobClient(name),
      getBlobClient: (name: string) => {
        const blob = real.getBlobClient(name);
        return {
          getProperties: async () => ({ ...(await blob.getProperties()), contentMD5: undefined }),
          download: () => {
            downloads += 1;
            return blob.download();
          },
        };
      },
    } as unknown as ContainerClient;
    const store = new AzureStorage({ container: CONTAINER, client: withoutMd5 }).blobs;
    const key = `no-md5-${Date.now()}/x.mjs`;
    const body = bytes("export const y = 1;");
    expect(await store.put(key, body, putOptions(body))).toBe("created");
    expect(await store.put(key, body, putOptions(body))).toBe("exists");
    expect(await store.compareStored?.(key, body, sha256Hex(body))).toBe("same");
    expect(downloads).toBe(2);
  });

  it("deletes a blob that has snapshots", async () => {
    const store = storage().blobs;
    const key = `snap-${Date.now()}/x`;
    await store.put(key, bytes("v1"), putOptions(bytes("v1")));
    await new ContainerClient(server.connectionString(), CONTAINER).getBlobClient(key).createSnapshot();
    await store.delete(key);
    expect(await store.head(key)).toBeUndefined();
  });

  it("keeps credentials out of its JSON, and a copy rebuilt from it reads the connection string from the environment", async () => {
    const original = storage({ prefix: "team/flows" });
    const json = JSON.stringify(original.toJSON());
    expect(json).not.toContain(AZURITE_ACCOUNT.key);
    expect(json).not.toContain("AccountKey");
    expect(original.toJSON()).toEqual({
      type: "AzureStorage",
      options: { prefix: "team/flows", container: CONTAINER, connectionStringEnv: ENV },
    });
    const body = bytes("registered here");
    await original.blobs.put("team/flows/etl/a.json", body, putOptions(body));

    process.env[ENV] = server.connectionString();
    const rebuilt = storageFromJSON(JSON.parse(json));
    expect(rebuilt).toBeInstanceOf(AzureStorage);
    expect(rebuilt.toJSON()).toEqual(original.toJSON());
    expect(new TextDecoder().decode(await rebuilt.blobs.get("team/flows/etl/a.json"))).toBe("registered here");
  });

  it("records a custom connectionStringEnv and reads that variable", async () => {
    const name = "TERN_TEST_AZURE_CONNECTION";
    const original = storage({ connectionStringEnv: name });
    expect(original.toJSON().options).toEqual({ prefix: "flows", container: CONTAINER, connectionStringEnv: name });
    delete process.env[ENV];
    process.env[name] = server.connectionString();
    try {
      const rebuilt = storageFromJSON(original.toJSON());
      expect(await rebuilt.blobs.list("nothing-here/")).toEqual([]);
    } finally {
      delete process.env[name];
    }
  });

  it("fails with STORAGE_CREDENTIALS naming the variable it read and the alternatives, and works once the variable is set", async () => {
    delete process.env[ENV];
    const unset = new AzureStorage({ container: CONTAINER }); // no I/O and no error until first use
    const attempt = unset.blobs.get("flows/x.json");
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_CREDENTIALS" });
    await expect(attempt).rejects.toThrow(
      /the environment variable AZURE_STORAGE_CONNECTION_STRING is not set\..*connectionString .*accountUrl .*client/,
    );
    const custom = new AzureStorage({ container: CONTAINER, connectionStringEnv: "MY_AZURE_CS" });
    await expect(custom.blobs.head("flows/x.json")).rejects.toThrow(/environment variable MY_AZURE_CS is not set/);

    process.env[ENV] = server.connectionString();
    expect(await unset.blobs.head("flows/x.json")).toBeUndefined();
  });

  it("rejects a connection string the SDK cannot parse without echoing it", async () => {
    const store = storage({ connectionString: "AccountName=devstoreaccount1;AccountKey=s3cr3t-value" }).blobs;
    const attempt = store.get("flows/x.json");
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_CREDENTIALS" });
    await expect(attempt).rejects.toThrow(/the connection string from option connectionString is not valid/);
    await expect(attempt).rejects.not.toThrow("s3cr3t-value");
  });
});

describe("AzureStorage with accountUrl", () => {
  const accountUrl = "https://myaccount.blob.core.windows.net";

  it("records the accountUrl, not a connection string variable, in its JSON", () => {
    const storage = new AzureStorage({ container: CONTAINER, accountUrl: `${accountUrl}/` });
    expect(storage.toJSON()).toEqual({
      type: "AzureStorage",
      options: { prefix: "flows", container: CONTAINER, accountUrl },
    });
    expect(storage.blobs.url).toBe(`azure://myaccount/${CONTAINER}`);
  });

  it("asks to install @azure/identity when it is not installed", async () => {
    const attempt = new AzureStorage({ container: CONTAINER, accountUrl }).blobs.get("flows/x.json");
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_CREDENTIALS" });
    await expect(attempt).rejects.toThrow(
      /DefaultAzureCredential from @azure\/identity, which could not be loaded .*Install it where this runs \(pnpm add @azure\/identity\)/,
    );
  });

  it("rejects an accountUrl carrying a SAS token, without echoing the token", () => {
    const make = () =>
      new AzureStorage({ container: CONTAINER, accountUrl: `${accountUrl}/?sv=2024-01-01&sig=SECRETSIG` });
    expect(make).toThrow(/accountUrl must not carry a SAS token.*SAS tokens are credentials/);
    expect(make).not.toThrow(/SECRETSIG/);
  });
});

describe("AzureStorage options", () => {
  // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid input.
  const make = (o: any) => () => new AzureStorage(o);
  const client = () => new ContainerClient(`http://127.0.0.1:1/${AZURITE_ACCOUNT.name}/${CONTAINER}`);

  it("rejects a missing or invalid container name, naming it", () => {
    expect(make({})).toThrow(/AzureStorage: option "container" is required/);
    for (const name of ["Flows", "ab", "a--b", "-ab", "ab-", "a_b", "a".repeat(64)]) {
      expect(make({ container: name })).toThrow(`container ${JSON.stringify(name)} is not a valid container name`);
    }
    expect(make({ container: "a".repeat(63) })).not.toThrow();
  });

  it("rejects unknown options and more than one way to connect", () => {
    expect(make({ container: CONTAINER, containr: "x" })).toThrow(/unknown option "containr"/);
    expect(make({ container: CONTAINER, containr: "x" })).toThrow(
      /Valid options: prefix, external, container, connectionString, connectionStringEnv, accountUrl, client\./,
    );
    expect(make({ container: CONTAINER, connectionString: 5 })).toThrow(
      /AzureStorage: option "connectionString" must be a string, not a number\./,
    );
    expect(
      make({ container: CONTAINER, connectionString: "x", accountUrl: "https://a.blob.core.windows.net" }),
    ).toThrow(/give one of connectionString, accountUrl or client, not connectionString and accountUrl/);
    expect(make({ container: CONTAINER, connectionString: "x", client: client() })).toThrow(
      /not connectionString and client/,
    );
    expect(make({ container: CONTAINER, connectionString: "" })).toThrow(/connectionString must be a non-empty string/);
  });

  it("rejects a bad connectionStringEnv or one combined with accountUrl", () => {
    expect(make({ container: CONTAINER, connectionStringEnv: "not a name" })).toThrow(
      /connectionStringEnv "not a name" is not an environment variable name/,
    );
    expect(
      make({ container: CONTAINER, connectionStringEnv: "X", accountUrl: "https://a.blob.core.windows.net" }),
    ).toThrow(/connectionStringEnv does not apply with accountUrl/);
  });

  it("rejects an accountUrl that is not an https account endpoint", () => {
    expect(make({ container: CONTAINER, accountUrl: "not a url" })).toThrow(/accountUrl "not a url" is not a URL/);
    expect(make({ container: CONTAINER, accountUrl: "http://a.blob.core.windows.net" })).toThrow(/must use https/);
    expect(make({ container: CONTAINER, accountUrl: "https://a.blob.core.windows.net/flows" })).toThrow(
      /has a path; give the account's endpoint only/,
    );
  });

  it("rejects a client that is not a ContainerClient of the container", () => {
    expect(make({ container: CONTAINER, client: {} })).toThrow(/client must be a ContainerClient/);
    expect(make({ container: "other", client: client() })).toThrow(
      /client is a client of container "tern-flows" but container is "other"/,
    );
  });
});

describe("AzureBlobStore error mapping (injected client)", () => {
  const account = "acct";
  // A stand-in for a ContainerClient whose every call fails with `error`.
  const failingClient = (error: unknown) => {
    const fail = async () => {
      throw error;
    };
    return {
      accountName: account,
      containerName: "c1",
      getBlockBlobClient: () => ({ uploadData: fail }),
      getBlobClient: () => ({ download: fail, getProperties: fail, deleteIfExists: fail }),
      listBlobsFlat: () => ({
        [Symbol.asyncIterator]: () => ({ next: fail }),
      }),
    } as unknown as ContainerClient;
  };
  const storeFailingWith = (error: unknown) =>
    new AzureBlobStore("c1", { kind: "client", client: failingClient(error) });
  const restError = (statusCode: number | undefined, code: string, message = `${code} from the fake`) =>
    Object.assign(new RestError(message, { statusCode, code }), { details: { errorCode: code } });

  it.each([
    [
      503,
      "ServerBusy",
      /Azure Get Blob azure:\/\/acct\/c1\/flows\/x\.json failed with 503 ServerBusy after the SDK's retries \(the service is unavailable or throttling/,
    ],
    [500, "InternalError", /failed with 500 InternalError after the SDK's retries/],
    [429, "TooManyRequests", /failed with 429 TooManyRequests after the SDK's retries/],
    [
      403,
      "AuthorizationPermissionMismatch",
      /^Azure denied Get Blob on azure:\/\/acct\/c1\/flows\/x\.json \(403 AuthorizationPermissionMismatch\)\. Check the credential of the client/,
    ],
    [404, "BlobNotFound", /^azure:\/\/acct\/c1\/flows\/x\.json does not exist\.$/],
    [
      400,
      "InvalidHeaderValue",
      /^Azure Get Blob azure:\/\/acct\/c1\/flows\/x\.json failed with 400 InvalidHeaderValue: InvalidHeaderValue from the fake$/,
    ],
  ])(
    "maps %i %s to a message that says what failed and what to do, keeping the cause",
    async (status, code, message) => {
      const error = restError(status, code);
      const attempt = storeFailingWith(error).get("flows/x.json");
      await expect(attempt).rejects.toThrow(message);
      await expect(attempt).rejects.toMatchObject({ cause: error });
    },
  );

  it("maps a 503 in put, head, list and delete with the operation's Azure name", async () => {
    const store = storeFailingWith(restError(503, "ServerBusy"));
    const body = bytes("x");
    await expect(store.put("k", body, putOptions(body))).rejects.toThrow(
      /^Azure Put Blob azure:\/\/acct\/c1\/k failed with 503/,
    );
    await expect(store.head("k")).rejects.toThrow(/^Azure Get Blob Properties azure:\/\/acct\/c1\/k failed with 503/);
    await expect(store.list("flows/")).rejects.toThrow(
      /^Azure List Blobs azure:\/\/acct\/c1 \(prefix "flows\/"\) failed with 503/,
    );
    await expect(store.delete("k")).rejects.toMatchObject({ code: "STORAGE_UNAVAILABLE", retryable: true });
  });

  it("reports an unreachable endpoint as unavailable after retries", async () => {
    const error = new RestError("connect ECONNREFUSED 127.0.0.1:1", { code: "REQUEST_SEND_ERROR" });
    const attempt = storeFailingWith(error).get("k");
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_UNAVAILABLE", retryable: true });
    await expect(attempt).rejects.toThrow(
      /could not reach the service \(connect ECONNREFUSED 127\.0\.0\.1:1\) after the SDK's retries/,
    );
  });

  it("explains where DefaultAzureCredential looked when it finds no credential", async () => {
    const error = Object.assign(new Error("DefaultAzureCredential failed to retrieve a token"), {
      name: "CredentialUnavailableError",
    });
    const attempt = storeFailingWith(error).get("k");
    await expect(attempt).rejects.toMatchObject({ code: "STORAGE_CREDENTIALS" });
    await expect(attempt).rejects.toThrow(/found no credential .*AZURE_TENANT_ID.*managed identity.*az login/);
  });

  it("treats a 404 other than ContainerNotFound as an absent key in head", async () => {
    const store = storeFailingWith(restError(404, "BlobNotFound"));
    expect(await store.head("k")).toBeUndefined();
  });
});

describe("AzureStorage connection strings", () => {
  it("names the malformed part of a connection string, never its value", async () => {
    const broken = `AccountName=devstoreaccount1;AccountKey=${"k".repeat(20)}SECRET;EndpointSuffix`;
    const store = new AzureStorage({ container: CONTAINER, connectionString: broken }).blobs;
    const attempt = store.head("flows/x.json");
    await expect(attempt).rejects.toThrow(/part 3 of 3 is not of the form Name=value/);
    await expect(attempt).rejects.not.toThrow(/SECRET/);
  });
});
