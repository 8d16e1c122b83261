/** The Cloud Storage emulator target of `pnpm bench storage` (imported by bench/storage.ts). */
import type { Target } from "./storage.js";

export async function target(): Promise<Target> {
  const { startGcsEmulator } = await import("@tern/test-support/servers");
  const { GCSStorage } = await import("@tern/storage-cloud/gcs");
  const { Storage } = await import("@google-cloud/storage");
  return {
    server: "gcs-emulator",
    start: () => startGcsEmulator(),
    store: async (server) =>
      new GCSStorage({ bucket: "bench", storageOptions: { apiEndpoint: server.endpoint, projectId: "tern-bench" } })
        .blobs,
    raw: async (server) => {
      const bucket = new Storage({ apiEndpoint: server.endpoint, projectId: "tern-bench" }).bucket("bench");
      return {
        put: (key, body) =>
          bucket.file(key).save(Buffer.from(body.buffer, body.byteOffset, body.byteLength), { resumable: false }),
        get: async (key) => new Uint8Array((await bucket.file(key).download())[0]),
      };
    },
  };
}
