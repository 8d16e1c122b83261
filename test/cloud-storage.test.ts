import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { S3Storage } from "@tern/storage-cloud/s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startS3rver } from "../packages/storage-cloud/test/servers.js";
import { type TernHome, ternHome } from "./support/cli.js";

/** Values no stored object may contain (s3rver accepts only this key pair). */
const SECRETS = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };

interface RunJson {
  state: string;
  reason?: string;
  outputs: Record<string, unknown>;
}

describe("a flow stored in S3 (s3rver)", () => {
  let s3: LocalServer;
  let t: TernHome;
  let env: Record<string, string>;

  beforeAll(async () => {
    s3 = await startS3rver(["tern-e2e"]);
    t = await ternHome();
    env = { ...SECRETS, AWS_REGION: "us-east-1", TERN_TEST_S3_ENDPOINT: s3.endpoint };
  }, 60_000);
  afterAll(async () => {
    await s3?.stop();
    await t?.cleanup();
  });

  it("runs through the agent to Success", async () => {
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
    const manifest = JSON.parse(texts[keys.findIndex((k) => k.endsWith(".json"))] as string) as {
      storage: { type: string; options: Record<string, unknown> };
    };
    expect(manifest.storage).toEqual({
      type: "S3Storage",
      options: {
        prefix: "team/flows",
        bucket: "tern-e2e",
        clientConfig: { endpoint: s3.endpoint, forcePathStyle: true },
      },
    });
  });
});
