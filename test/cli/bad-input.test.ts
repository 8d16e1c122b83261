import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LocalBlobStore, sha256Hex } from "@tern/core/plugin";
import { SqliteBackend } from "@tern/core/runtime";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type TernHome, ternHome } from "../support/cli.js";

let t: TernHome;
beforeEach(async () => {
  t = await ternHome();
});
afterEach(() => t.cleanup());

/** Everything under TERN_HOME/storage, to prove nothing was written. */
async function stored(): Promise<string[]> {
  try {
    return (await readdir(join(t.home, "storage"), { recursive: true })).filter((f) => /\.(mjs|json)$/.test(f));
  } catch {
    return [];
  }
}

async function flowsAndRuns(): Promise<{ flows: unknown[]; runs: unknown[] }> {
  return { flows: await t.json(["flows"]), runs: await t.json(["runs"]) };
}

describe("tern register rejects bad flow files and writes nothing", () => {
  it("rejects a missing file (exit 2)", async () => {
    const result = await t.tern(["register", "test/fixtures/nope.ts"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/file .*test\/fixtures\/nope\.ts does not exist/);
    expect(await stored()).toEqual([]);
  });

  it("rejects a file that exports no flow", async () => {
    const result = await t.tern(["register", "test/fixtures/no-flow.ts"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no-flow\.ts exports no flow\. Export one/);
    expect(await stored()).toEqual([]);
    expect(await flowsAndRuns()).toEqual({ flows: [], runs: [] });
  });

  it("rejects two flows with one name in a file, naming both exports", async () => {
    const result = await t.tern(["register", "test/fixtures/same-name.ts"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/exports two flows named "dup" \(exports "first" and "second"\)/);
    expect(await stored()).toEqual([]);
  });

  it("rejects a CommonJS flow file, saying to write it with import and export", async () => {
    const result = await t.tern(["register", "test/fixtures/commonjs-flow.cjs"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/commonjs-flow\.cjs is a CommonJS module .* Write the file with import and export/);
    expect(await stored()).toEqual([]);
  });

  it("names a package that is not installed, the flow's file and the install command", async () => {
    const result = await t.tern(["register", "test/fixtures/missing-package.ts"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Cannot find package 'tern-test-package-not-installed'");
    expect(result.stderr).toContain("test/fixtures/missing-package.ts");
    expect(result.stderr).not.toContain(".cache/tern");
    expect(result.stderr).toContain("npm i tern-test-package-not-installed");
    expect(await stored()).toEqual([]);
  });

  it("rejects a syntax error with the file and the line", async () => {
    const file = join(t.home, "broken.ts");
    await writeFile(
      file,
      'import { Flow } from "@tern/core";\n\nexport const flow = new Flow("x", {}, () => {\n  const = 1;\n});\n',
    );
    const result = await t.tern(["register", file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}:4:`);
    expect(await stored()).toEqual([]);
  });

  it("rejects a parameter default JSON cannot hold, before storing anything", async () => {
    const result = await t.tern(["register", "test/fixtures/bigint-default.ts"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/the default of parameter "limit" cannot be stored as JSON \(BigInt 10n/);
    expect(await stored()).toEqual([]);
  });

  it("stores nothing when a later file fails its checks after an earlier one bundled fine", async () => {
    const result = await t.tern(["register", "examples/etl.ts", "test/fixtures/bigint-default.ts"]);
    expect(result.code).toBe(1);
    expect(await stored()).toEqual([]);
    expect(await flowsAndRuns()).toEqual({ flows: [], runs: [] });
  });

  it("rejects all files when one of them is bad: the good one is not registered either", async () => {
    const result = await t.tern(["register", "examples/etl.ts", "test/fixtures/no-flow.ts"]);
    expect(result.code).toBe(1);
    expect(await stored()).toEqual([]);
    expect(await flowsAndRuns()).toEqual({ flows: [], runs: [] });
  });

  it.each([",", " ", "dev, staging"])("rejects the label list %j", async (labels) => {
    const result = await t.tern(["register", "examples/etl.ts", "--labels", labels]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/label ".*" (is empty or whitespace|has surrounding spaces)/);
    expect(await stored()).toEqual([]);
  });

  it("rejects a TERN_HOME that is not writable, naming it", async () => {
    const file = join(t.home, "a-file");
    await writeFile(file, "not a directory");
    const home = join(file, "home");
    const result = await t.tern(["register", "examples/etl.ts"], { TERN_HOME: home });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(home);
    expect(result.stderr).toMatch(/TERN_HOME/);
    expect(await readFile(file, "utf8")).toBe("not a directory");
  });
});

describe("tern run rejects bad runs and creates nothing", () => {
  beforeEach(async () => {
    expect((await t.tern(["register", "test/fixtures/params.ts", "examples/etl.ts"])).code).toBe(0);
  });

  it("rejects an unknown parameter and a missing required one", async () => {
    const unknown = await t.tern(["run", "greet", "--param", "who=you", "--param", "whom=x"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown parameter "whom".*It declares "who", "punctuation"/);
    const missing = await t.tern(["run", "greet"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/missing required parameter "who"/);
    expect(await t.json(["runs"])).toEqual([]);
  });

  it("rejects a malformed --param (exit 2)", async () => {
    const result = await t.tern(["run", "greet", "--param", "who"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--param "who" is not of the form name=value/);
  });

  it.each([",", " ", ""])("rejects the run label list %j", async (labels) => {
    const result = await t.tern(["run", "etl", "--labels", labels]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/is empty or whitespace/);
    expect(await t.json(["runs"])).toEqual([]);
  });

  it("rejects an unregistered flow with a hint", async () => {
    const result = await t.tern(["run", "nope"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Flow "nope" is not registered in project "default".*tern register/);
  });

  it("passes typed parameters and returns the same run for a repeated idempotency key", async () => {
    const first = await t.json<{ id: string }>(["run", "greet", "--param", "who=tern", "--idempotency-key", "evt-1"]);
    const second = await t.json<{ id: string }>(["run", "greet", "--param", "who=tern", "--idempotency-key", "evt-1"]);
    expect(second.id).toBe(first.id);
    expect(await t.tern(["agent", "--once"])).toMatchObject({ code: 0 });
    const run = await t.json<{ state: string; outputs: Record<string, unknown> }>(["runs", "show", first.id]);
    expect(run.state).toBe("Success");
    expect(run.outputs.greeting).toEqual({ kind: "json", value: "hello tern!" });
    expect((await t.tern(["logs", first.id])).stdout).toMatch(/INFO {2}\[greet\] hello tern!/);
  });
});

describe("stored objects and manifests that went bad", () => {
  async function registeredEtl(): Promise<{ bundle: string; manifest: string }> {
    expect((await t.tern(["register", "examples/etl.ts"])).code).toBe(0);
    const files = await stored();
    const bundle = files.find((f) => f.endsWith(".mjs")) as string;
    const manifest = files.find((f) => f.endsWith(".json")) as string;
    return { bundle: join(t.home, "storage", bundle), manifest: join(t.home, "storage", manifest) };
  }

  async function runOnce(): Promise<{ state: string; reason: string }> {
    const { id } = await t.json<{ id: string }>(["run", "etl"]);
    await t.tern(["agent", "--once"]);
    return t.json(["runs", "show", id]);
  }

  it("fails a run whose bundle bytes changed after registration, naming both hashes", async () => {
    const { bundle } = await registeredEtl();
    const original = await readFile(bundle);
    await writeFile(bundle, Buffer.concat([original, Buffer.from("\n// tampered\n")]));
    const run = await runOnce();
    expect(run.state).toBe("Failed");
    expect(run.reason).toMatch(
      new RegExp(
        `bundle sha256 mismatch \\(expected ${sha256Hex(original)}, got [0-9a-f]{64}\\).*register the flow again`,
      ),
    );
  });

  it("repairs a changed bundle when the flow is registered again", async () => {
    const { bundle } = await registeredEtl();
    await writeFile(bundle, "// not the bundle any more\n");
    const again = await t.tern(["register", "examples/etl.ts"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/unchanged {2}etl v1 {2}[0-9a-f]{12} {2}[1-9]\d* bytes uploaded/);
    expect((await runOnce()).state).toBe("Success");
  });

  it("fails a run whose bundle is missing from storage, with a hint about lifecycle rules", async () => {
    const { bundle } = await registeredEtl();
    await rm(bundle);
    const run = await runOnce();
    expect(run.state).toBe("Failed");
    expect(run.reason).toMatch(/its bundle file:\/\/.*\.mjs is missing from storage.*lifecycle/);
  });

  it("refuses a manifest changed after registration", async () => {
    const { manifest } = await registeredEtl();
    await writeFile(manifest, `${await readFile(manifest, "utf8")} `);
    const result = await t.tern(["run", "etl"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/manifest sha256 mismatch/);
    expect(await t.json(["runs"])).toEqual([]);
  });

  /** Records a flow version whose manifest is `manifest`, as if a buggy or foreign tool wrote it. */
  async function recordManifest(name: string, manifest: unknown, storageType = "LocalStorage"): Promise<void> {
    const bytes = new TextEncoder().encode(JSON.stringify(manifest));
    const hash = sha256Hex(bytes);
    const location = `flows/${name}/${hash}.json`;
    await mkdir(join(t.home, "storage"), { recursive: true });
    await new LocalBlobStore(join(t.home, "storage")).put(location, bytes, { sha256: hash });
    const backend = await SqliteBackend.open({ path: join(t.home, "state.db") });
    try {
      await backend.registerFlowVersion({
        project: "default",
        flow: name,
        labels: [],
        storage: { type: storageType, options: { prefix: "flows" } },
        location,
        manifestHash: hash,
        environmentType: "LocalEnvironment",
      });
    } finally {
      await backend.close();
    }
  }

  async function etlManifest(): Promise<Record<string, unknown>> {
    const { manifest } = await registeredEtl();
    return JSON.parse(await readFile(manifest, "utf8")) as Record<string, unknown>;
  }

  it("refuses a manifest that fails its schema, naming the field", async () => {
    const manifest = await etlManifest();
    await recordManifest("bad-schema", {
      ...manifest,
      flow: { ...(manifest.flow as object), name: "bad-schema" },
      bundle: { key: 42 },
    });
    const result = await t.tern(["run", "bad-schema"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Manifest .* is invalid: bundle\.key: .*register the flow again/);
    expect(await t.json(["runs"])).toEqual([]);
  });

  it("fails a run whose environment type no agent knows", async () => {
    const manifest = await etlManifest();
    await recordManifest("odd-env", {
      ...manifest,
      flow: { ...(manifest.flow as object), name: "odd-env" },
      environment: { type: "MainframeEnvironment", options: {}, builtin: true },
    });
    const { id } = await t.json<{ id: string }>(["run", "odd-env"]);
    expect((await t.tern(["agent", "--once"])).code).toBe(1);
    const run = await t.json<{ state: string; reason: string }>(["runs", "show", id]);
    expect(run.state).toBe("Failed");
    expect(run.reason).toMatch(/environment type "MainframeEnvironment" is not available to this agent/);
  });

  it("fails a custom environment type that the flow's bundle does not define", async () => {
    const manifest = await etlManifest();
    // The manifest still names the bundle's flow "etl"; only its environment type is foreign.
    await recordManifest("odd-custom", {
      ...manifest,
      environment: { type: "GhostEnvironment", options: {}, builtin: false },
    });
    const { id } = await t.json<{ id: string }>(["run", "odd-custom"]);
    await t.tern(["agent", "--once"]);
    const run = await t.json<{ state: string; reason: string }>(["runs", "show", id]);
    expect(run.state).toBe("Failed");
    expect(run.reason).toMatch(/unknown environment type "GhostEnvironment"/);
  });

  it("refuses a flow version whose storage type is unknown", async () => {
    const manifest = await etlManifest();
    await recordManifest(
      "odd-storage",
      { ...manifest, flow: { ...(manifest.flow as object), name: "odd-storage" } },
      "TapeStorage",
    );
    const result = await t.tern(["run", "odd-storage"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /Unknown storage type "TapeStorage". This process knows: LocalStorage, MemoryStorage/,
    );
    expect(await t.json(["runs"])).toEqual([]);
  });
});

describe("usage", () => {
  it.each([
    [["frobnicate"], /unknown command "frobnicate"/],
    [["run"], /tern run: expected 1 argument, got 0/],
    [["runs", "--colour"], /Unknown option '--colour'/],
    [["agent", "--concurrency", "0"], /--concurrency must be a positive integer, got "0"/],
    [["runs", "--state", "Done"], /--state "Done" is not a run state/],
    [[], /Usage: tern <command>/],
  ])("exits 2 for %j", async (args, message) => {
    const result = await t.tern(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it.each(["register", "run", "agent", "flows", "runs", "logs", "cancel", "why", "execute"])(
    "prints help for %s",
    async (command) => {
      const result = await t.tern([command, "--help"]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: tern ${command}`));
    },
  );

  it("prints the version of tern and of node", async () => {
    const { version } = JSON.parse(await readFile("packages/core/package.json", "utf8")) as { version: string };
    const result = await t.tern(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`tern ${version} (node ${process.version})\n`);
  });
});

describe("registering from another directory", () => {
  it("gives the same bundle and no new version", async () => {
    const first = await t.json<Array<{ hash: string; version: number }>>(["register", "examples/etl.ts"]);
    const { runTern } = await import("../support/cli.js");
    const fromExamples = await runTern(["register", "etl.ts", "--json"], { TERN_HOME: t.home }, "examples");
    expect(fromExamples.code, fromExamples.stderr).toBe(0);
    const second = JSON.parse(fromExamples.stdout) as Array<{ hash: string; version: number; status: string }>;
    expect(second).toEqual([expect.objectContaining({ status: "unchanged", version: 1, hash: first[0]?.hash })]);
  });
});
