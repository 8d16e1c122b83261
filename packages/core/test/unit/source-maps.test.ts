import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LocalStorage } from "@tern/core";
import { importFlowFile } from "@tern/core/runtime";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { describe, expect, it } from "vitest";
import { scaled } from "../fixtures/two-flows.js";

const home = useTempTernHome("tern-source-maps-");

const INLINE_MAP = /\n\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\n?$/;

describe("a bundle's source map", () => {
  it("is inside the bundle (covered by its sha256), with paths relative to the project and no source text", async () => {
    const storage = new LocalStorage({ directory: join(home.path, "store") });
    storage.add(scaled);
    const [built] = await storage.build();
    const text = new TextDecoder().decode(await storage.blobs.get(built?.manifest.bundle.key ?? ""));
    const encoded = INLINE_MAP.exec(text)?.[1];
    expect(encoded, "the bundle ends with an inline source map").toBeDefined();
    const map = JSON.parse(Buffer.from(encoded ?? "", "base64").toString("utf8")) as Record<string, unknown>;
    expect(map.sourceRoot).toBe("project:");
    expect(map.sources).toContain("packages/core/test/fixtures/two-flows.ts");
    expect(map).not.toHaveProperty("sourcesContent");
    // No path of the machine that built it.
    expect(text).not.toContain(process.cwd());
    expect(JSON.stringify(map)).not.toContain(process.cwd());
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
