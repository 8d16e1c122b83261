import { join } from "node:path";
import { SqliteBackend } from "@tern/core/runtime";
import { S3Storage } from "@tern/storage-cloud/s3";
import { type FaultProxy, startFaultProxy } from "@tern/test-support/fault-proxy";
import { type LocalServer, S3RVER_CREDENTIALS, startS3rver } from "@tern/test-support/servers";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { flow } from "./fixtures/numbers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

let server: LocalServer;
let proxy: FaultProxy;
const home = useTempTernHome("tern-faults-");
let backend: SqliteBackend;

beforeAll(async () => {
  server = await startS3rver(["faulty"]);
  proxy = await startFaultProxy(server.endpoint);
}, 60_000);
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});
beforeEach(async () => {
  backend = await SqliteBackend.open({ path: join(home.path, "state.db") });
});
afterEach(async () => {
  await backend.close();
});

/** A storage through the proxy, under a prefix of its own; retries quickly so tests stay short. */
function storage(prefix: string, maxAttempts = 3): S3Storage {
  return new S3Storage({
    bucket: "faulty",
    prefix,
    conditionalWrites: false,
    clientConfig: {
      region: "us-east-1",
      endpoint: proxy.endpoint,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      maxAttempts,
      retryMode: "standard",
    },
  });
}

describe("registration through a faulty connection to S3", () => {
  it("succeeds when the first requests get 503 or a reset connection, and stores exactly the bundle and the manifest", async () => {
    const s = storage("retry-ok");
    proxy.failNext("503", "reset");
    const result = await flow.register("faults", { backend, storage: s });
    expect(result.status).toBe("new");
    expect(proxy.requests.filter((r) => r.fault !== undefined)).toHaveLength(2);
    const keys = await s.blobs.list("retry-ok/");
    expect(keys).toHaveLength(2);
    expect(keys.filter((k) => k.endsWith(".mjs"))).toHaveLength(1);
    expect(keys).toContain(result.location);
    const loaded = await s.load(result.location, { expectedHash: result.hash });
    expect((await loaded.flow.run({ echo: false })).state).toBe("Success");
  });

  it("removes the bundle it uploaded when the manifest cannot be written", async () => {
    const s = storage("half-way", 2);
    // Three requests store the bundle (two existence checks and the put); the manifest's fail.
    proxy.failNext("pass", "pass", "pass", "503", "503");
    await expect(flow.register("faults", { backend, storage: s })).rejects.toThrow(/failed with 503/);
    proxy.clear();
    expect(proxy.requests.some((r) => r.method === "PUT" && r.path.includes(".mjs"))).toBe(true);
    expect(proxy.requests.some((r) => r.method === "DELETE" && r.path.includes(".mjs"))).toBe(true);
    expect(await s.blobs.list("half-way/")).toEqual([]);
    expect(await backend.listFlows()).toEqual([]);
  });

  it("fails with a clear error when S3 stays unavailable, and leaves nothing behind", async () => {
    const s = storage("retry-fail", 2);
    proxy.failNext(...Array.from({ length: 6 }, () => "503" as const));
    await expect(flow.register("faults", { backend, storage: s })).rejects.toThrow(
      /S3 (head|put|get) s3:\/\/faulty\/retry-fail\/.* failed with 503 .* after 2 attempts/,
    );
    proxy.clear();
    expect(await s.blobs.list("retry-fail/")).toEqual([]);
    expect(await backend.listFlows()).toEqual([]);
  });
});
