/** The azurite target of `pnpm bench storage` (imported by bench/storage.ts, not run by itself). */
import type { Target } from "./storage.js";

export async function target(): Promise<Target> {
  const { startAzurite } = await import("@tern/test-support/servers");
  const { AzureStorage } = await import("@tern/storage-cloud/azure");
  const { ContainerClient } = await import("@azure/storage-blob");
  let connectionString = "";
  return {
    server: "azurite",
    start: async () => {
      const server = await startAzurite();
      connectionString = server.connectionString();
      await new ContainerClient(connectionString, "bench").create();
      return server;
    },
    store: async () => new AzureStorage({ container: "bench", connectionString }).blobs,
    raw: async () => {
      const container = new ContainerClient(connectionString, "bench");
      return {
        put: async (key, body) => void (await container.getBlockBlobClient(key).uploadData(body)),
        get: async (key) => new Uint8Array(await container.getBlockBlobClient(key).downloadToBuffer()),
      };
    },
  };
}
