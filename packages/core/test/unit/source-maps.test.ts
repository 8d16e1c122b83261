import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { LocalStorage } from "@tern/core";
import { useTempTernHome } from "@tern/test-support/tern-home";
import { describe, expect, it } from "vitest";
import { scaled } from "../fixtures/two-flows.js";

const home = useTempTernHome("tern-source-maps-");
const run = promisify(execFile);

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
    // The flow's package is packages/core (its nearest package.json).
    expect(map.sources).toContain("test/fixtures/two-flows.ts");
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
    // In a process of its own: vitest formats stack traces itself, past Node's source maps.
    const script = `const { importFlowFile } = await import("@tern/core/runtime");
      try { (await importFlowFile(${JSON.stringify(file)})).boom(); } catch (error) { console.log(error.stack); }`;
    const { stdout } = await run(
      process.execPath,
      ["--conditions=@tern/source", "--import", "tsx", "--input-type=module", "-e", script],
      { cwd: import.meta.dirname },
    );
    expect(stdout).toContain(`${file}:4:9`);
    expect(stdout).not.toContain(".cache");
  });
});
