import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LocalStorage, type Storage } from "@tern/core";
import { sha256Hex } from "@tern/core/plugin";
import { importFlowFile } from "@tern/core/runtime";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { describe, expect, it } from "vitest";
import { scaled } from "../fixtures/two-flows.js";

const home = useTempTernHome("tern-source-maps-");

/** Builds `scaled` into a fresh storage and stores its manifest. */
async function built(): Promise<{ storage: Storage; location: string; map: { key: string; sha256: string } }> {
  const storage = new LocalStorage({ directory: join(home.path, "store") });
  storage.add(scaled);
  const [flow] = await storage.build();
  const map = flow?.manifest.bundle.sourceMap;
  if (flow === undefined || map === undefined) throw new Error("the build recorded no source map");
  const { location } = await storage.writeManifest(flow.manifest);
  return { storage, location, map };
}

describe("a bundle's source map", () => {
  it("is stored beside the bundle under its own hash, recorded in the manifest, with paths relative to the project", async () => {
    const { storage, map } = await built();
    expect(map.key).toBe(`flows/scaled/${map.sha256}.mjs.map`);
    const bytes = await storage.blobs.get(map.key);
    expect(sha256Hex(bytes)).toBe(map.sha256);
    const json = JSON.parse(new TextDecoder().decode(bytes)) as { sources: string[]; sourceRoot: string };
    expect(json.sourceRoot).toBe("project:");
    expect(json.sources).toContain("packages/core/test/fixtures/two-flows.ts");
    // No path of the machine that built it, and no source text: the mappings only.
    expect(new TextDecoder().decode(bytes)).not.toContain(process.cwd());
    expect(json).not.toHaveProperty("sourcesContent");
  });

  it("is checked against the manifest's sha256 when the flow loads: a changed map is refused", async () => {
    const { storage, location, map } = await built();
    const file = join(home.path, "store", ...map.key.split("/"));
    await writeFile(file, '{"version":3,"sources":[],"mappings":""}');
    const attempt = storage.load(location);
    await expect(attempt).rejects.toMatchObject({ code: "BUNDLE_INTEGRITY" });
    await expect(attempt).rejects.toThrow(/source map sha256 mismatch/);
  });

  it("leaves the flow loadable when it was deleted (stack traces then name the bundle)", async () => {
    const { storage, location, map } = await built();
    await storage.blobs.delete(map.key);
    const { flow } = await storage.load(location);
    expect(flow.name).toBe("scaled");
  });
});

describe("importFlowFile", () => {
  it("gives stack traces that name the user's file and line, not the compiled module", async () => {
    const project = join(home.path, "project");
    await mkdir(join(project, "src"), { recursive: true });
    await writeFile(join(project, "package.json"), '{ "name": "p", "type": "module" }\n');
    const file = join(project, "src", "flow.ts");
    await writeFile(file, "// one\n// two\nexport function boom(): never {\n  throw new Error('boom');\n}\n");
    const { boom } = (await importFlowFile(file)) as { boom: () => never };
    let stack = "";
    try {
      boom();
    } catch (error) {
      stack = (error as Error).stack ?? "";
    }
    expect(stack).toContain(`${file}:4:9`);
    expect(stack).not.toContain(".cache");
  });
});
