import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ContainerClient } from "@azure/storage-blob";
import type { BlobStore } from "@tern/core/plugin";
import { AzureStorage } from "@tern/storage-cloud/azure";
import { GCSStorage } from "@tern/storage-cloud/gcs";
import { S3Storage } from "@tern/storage-cloud/s3";
import { AZURITE_ACCOUNT, startAzurite, startGcsEmulator, startS3rver } from "@tern/test-support/servers";
import { describe, expect, it } from "vitest";
import type { TernHome } from "./support/cli.js";
import { useServerAndHome } from "./support/use-server.js";

/** Values no stored object may contain (s3rver accepts only this key pair). */
const SECRETS = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };

interface RunJson {
  state: string;
  reason?: string;
  outputs: Record<string, unknown>;
}

describe("a flow stored in S3 (s3rver)", () => {
  const local = useServerAndHome(() => startS3rver(["tern-e2e"]));

  it("runs through the agent to Success", async () => {
    const { t, server: s3 } = local;
    const env = { ...SECRETS, AWS_REGION: "us-east-1", TERN_TEST_S3_ENDPOINT: s3.endpoint };
    const registered = await t.tern(["register", "test/fixtures/s3-flow.ts", "--json"], env);
    expect(registered.code, registered.stderr).toBe(0);
    expect(JSON.parse(registered.stdout)).toEqual([
      expect.objectContaining({ name: "s3-etl", status: "new", version: 1 }),
    ]);
    const again = await t.json<Array<{ status: string }>>(["register", "test/fixtures/s3-flow.ts"], env);
    expect(again[0]?.status).toBe("unchanged");

    const { id } = await t.json<{ id: string }>(["run", "s3-etl"], env);
    const agent = await t.tern(["agent", "--once"], env);
    expect(agent.code, agent.stderr).toBe(0);
    const run = await t.json<RunJson>(["runs", "show", id], env);
    expect(run.state, run.reason).toBe("Success");
    expect(run.outputs.total).toEqual({ kind: "json", value: 6 });
  });

  it("stores no credential in any object, manifest, bundle or the backend", async () => {
    const { t, server: s3 } = local;
    const blobs = new S3Storage({
      bucket: "tern-e2e",
      clientConfig: {
        region: "us-east-1",
        endpoint: s3.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      },
    }).blobs;
    const keys = await blobs.list("");
    expect(keys.some((k) => k.endsWith(".mjs"))).toBe(true);
    expect(keys.some((k) => k.endsWith(".json"))).toBe(true);
    const texts = await Promise.all(keys.map(async (key) => new TextDecoder().decode(await blobs.get(key))));
    texts.push((await readFile(join(t.home, "state.db"))).toString("latin1"));
    for (const text of texts) {
      for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
    }
    // The driver's SDK stays a dynamic import (the runner never uploads from a bundle); its options'
    // schema library is inlined, as a flow's own dependencies are.
    const bundle = texts[keys.findIndex((k) => k.endsWith(".mjs"))] as string;
    expect(bundle).toMatch(/import\(\s*"@aws-sdk\/client-s3"\s*\)/);
    expect(bundle).not.toMatch(/from\s*"zod/);
    const manifest = JSON.parse(texts[keys.findIndex((k) => k.endsWith(".json"))] as string) as {
      storage: { type: string; options: Record<string, unknown> };
    };
    expect(manifest.storage).toEqual({
      type: "S3Storage",
      options: {
        prefix: "team/flows",
        bucket: "tern-e2e",
        conditionalWrites: false,
        clientConfig: { endpoint: s3.endpoint, forcePathStyle: true },
      },
    });
  });
});

/** Every stored object's text, plus the backend's file: where a leaked credential would show. */
async function everythingStored(blobs: BlobStore, home: string): Promise<string[]> {
  const keys = await blobs.list("");
  expect(keys.some((k) => k.endsWith(".mjs"))).toBe(true);
  expect(keys.some((k) => k.endsWith(".json"))).toBe(true);
  const texts = await Promise.all(keys.map(async (key) => new TextDecoder().decode(await blobs.get(key))));
  texts.push((await readFile(join(home, "state.db"))).toString("latin1"));
  return texts;
}

async function runThroughAgent(t: TernHome, file: string, flow: string, env: Record<string, string>): Promise<RunJson> {
  const registered = await t.tern(["register", file], env);
  expect(registered.code, registered.stderr).toBe(0);
  const { id } = await t.json<{ id: string }>(["run", flow], env);
  const agent = await t.tern(["agent", "--once"], env);
  expect(agent.code, agent.stderr).toBe(0);
  return t.json<RunJson>(["runs", "show", id], env);
}

describe("a flow stored in Cloud Storage (the emulator)", () => {
  const privateKey = "-----BEGIN PRIVATE KEY-----tern-test-key-never-store-me-----END PRIVATE KEY-----";
  const local = useServerAndHome(startGcsEmulator);

  it("runs through the agent to Success and stores no credential", async () => {
    const { t, server: gcs } = local;
    const env = { TERN_TEST_GCS_ENDPOINT: gcs.endpoint, TERN_TEST_GCS_KEY: privateKey };
    const run = await runThroughAgent(t, "test/fixtures/gcs-flow.ts", "gcs-etl", env);
    expect(run.state, run.reason).toBe("Success");
    expect(run.outputs.total).toEqual({ kind: "json", value: 6 });
    const blobs = new GCSStorage({
      bucket: "tern-e2e",
      storageOptions: { apiEndpoint: gcs.endpoint, projectId: "tern-test" },
    }).blobs;
    for (const text of await everythingStored(blobs, t.home)) {
      // The flow's code names the field (it is in the bundle); its value must be nowhere.
      expect(text).not.toContain("tern-test-key-never-store-me");
    }
  });
});

describe("a flow stored in Azure Blob storage (azurite)", () => {
  const local = useServerAndHome(async () => {
    const azure = await startAzurite();
    await new ContainerClient(azure.connectionString(), "tern-e2e").create();
    return azure;
  });

  it("runs through the agent to Success and stores no credential", async () => {
    const { t, server: azure } = local;
    const env = { AZURE_STORAGE_CONNECTION_STRING: azure.connectionString() };
    const run = await runThroughAgent(t, "test/fixtures/azure-flow.ts", "azure-etl", env);
    expect(run.state, run.reason).toBe("Success");
    expect(run.outputs.total).toEqual({ kind: "json", value: 6 });
    const blobs = new AzureStorage({ container: "tern-e2e", connectionString: azure.connectionString() }).blobs;
    for (const text of await everythingStored(blobs, t.home)) {
      // The driver's code (in the bundle) names the field; the key itself must be nowhere.
      expect(text).not.toContain(AZURITE_ACCOUNT.key);
      if (!text.startsWith("import ")) expect(text).not.toContain("AccountKey");
    }
  });
});
