/**
 * tern as a user installs it: every package built and packed, the tarballs installed with npm
 * into projects outside this workspace (an ES module project and a CommonJS one, npm's default),
 * under the machine's Node and under Node 24. There, with the commands of the README's "Use tern
 * in your project": `npx tern register` of `.ts`, `.mts` and `.mjs` flows, `npx tern run`,
 * `npx tern agent --once`, the run's state and outputs, a scheduled flow's `npx tern schedules`
 * and the runs an agent creates for it; a flow kept in a Git repository (`@tern/storage-git`,
 * against git http-backend) run with the Git cache emptied first; a flow kept in a container image
 * (`@tern/storage-docker`, built with no Docker daemon on a base pushed to Debian's docker-registry)
 * registered, registered again unchanged, and run from the image's flow layer on the registry (in
 * the ES module project, once per Node); `flow.register()` from a plain `.mjs` script; and
 * `npx cdk synth` of a user's CDK app that imports `TernStack` from `@tern/infra`, whose assembly
 * must hold no Docker image asset. The packed `@tern/storage-docker` is checked for what it ships:
 * its build and README, the dependencies it needs at run time, and its index as a side effect.
 *
 * The slow part is npm building better-sqlite3 from source once per Node version; the CommonJS
 * project starts from the ES module project's `node_modules` so that it builds nothing again.
 */
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GitServer, startGitServer } from "@tern/test-support/git-server";
import {
  CURRENT_NODE,
  createProject,
  exec,
  type NodeRuntime,
  node24,
  npxTern,
  packWorkspace,
  projectEnv,
} from "@tern/test-support/packed";
import { type Registry, startRegistry } from "@tern/test-support/registry";
import { type BaseImage, pushBaseImage } from "@tern/test-support/registry-images";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./support/cli.js";

/** What a user adds beside tern for their CDK app (the versions this repository is tested with). */
const CDK_PACKAGES = ["aws-cdk-lib@2.276.0", "constructs@10.8.1", "aws-cdk@2.1148.1"];
const FIXTURE = join(ROOT, "test", "fixtures", "user-project");
const ENV = { account: "123456789012", region: "eu-west-1" };

/** The Node versions the installed form is tested under. */
const RUNTIMES = [
  ["the machine's Node", async (): Promise<NodeRuntime> => CURRENT_NODE],
  ["Node 24", () => node24(join(ROOT, "node_modules", ".cache", "tern-test", "node24"))],
] as const;

interface Projects {
  readonly node: NodeRuntime;
  readonly esm: string;
  readonly cjs: string;
}

let work: string;
let git: GitServer;
let registry: Registry;
let base: BaseImage;
let tarballs: string[];
let repositories = 0;
/** Each runtime's projects, installing in the background from the start (both at once). */
const projects = new Map<string, Promise<Projects>>();

/** An ES module project, then a CommonJS one started from its node_modules, with the user's files. */
async function install(runtime: () => Promise<NodeRuntime>, tarballs: readonly string[]): Promise<Projects> {
  const node = await runtime();
  const dir = await mkdtemp(join(work, "projects-"));
  const esm = await createProject({
    dir: join(dir, "esm"),
    type: "module",
    runtime: node,
    tarballs,
    extra: CDK_PACKAGES,
  });
  const cjs = await createProject({
    dir: join(dir, "cjs"),
    type: "commonjs",
    runtime: node,
    tarballs,
    extra: CDK_PACKAGES,
    seed: esm,
  });
  await addUserFiles(esm, "module");
  await addUserFiles(cjs, "commonjs");
  return { node, esm, cjs };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tern-packed-"));
  git = await startGitServer();
  registry = await startRegistry();
  base = await pushBaseImage(registry.endpoint, "base/node", { tag: "22", platforms: ["linux/amd64"] });
  tarballs = await packWorkspace(join(work, "pack"));
  // npm compiles better-sqlite3 for each Node, one C file at a time: the two installs run side
  // by side, and the second runtime's is done by the time the first one's tests are.
  for (const [name, runtime] of RUNTIMES) {
    const installing = install(runtime, tarballs);
    installing.catch(() => {}); // reported by that runtime's beforeAll
    projects.set(name, installing);
  }
}, 900_000);

afterAll(async () => {
  await Promise.allSettled(projects.values());
  await git?.stop();
  await registry?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

interface RunView {
  state: string;
  reason?: string;
  outputs?: Record<string, { kind: string; value?: unknown }>;
}

/** The user's files: flows, a registration script and a CDK app (ESM `.mjs`, or CommonJS `.cjs`). */
async function addUserFiles(project: string, type: "module" | "commonjs"): Promise<void> {
  await cp(FIXTURE, project, { recursive: true });
  const app =
    type === "module"
      ? `import { App } from "aws-cdk-lib";\nimport { TernStack } from "@tern/infra";\n\nconst app = new App();\nnew TernStack(app, "Tern", { env: ${JSON.stringify(ENV)} });\n`
      : `const { App } = require("aws-cdk-lib");\nconst { TernStack } = require("@tern/infra");\n\nconst app = new App();\nnew TernStack(app, "Tern", { env: ${JSON.stringify(ENV)} });\n`;
  const file = type === "module" ? "app.mjs" : "app.cjs";
  await writeFile(join(project, file), app);
  await writeFile(join(project, "cdk.json"), `${JSON.stringify({ app: `node ${file}` }, null, 2)}\n`);
  // The availability zones, which the CDK CLI otherwise looks up with the user's credentials on
  // the first synth of a stack with an explicit account and region (and keeps in this file).
  const zones = {
    [`availability-zones:account=${ENV.account}:region=${ENV.region}`]: ["a", "b", "c"].map((z) => ENV.region + z),
  };
  await writeFile(join(project, "cdk.context.json"), `${JSON.stringify(zones, null, 2)}\n`);
}

/** Registers, runs and checks the flows of a project, as its README says. */
async function registerAndRun(project: string, runtime: NodeRuntime): Promise<void> {
  const env = { TERN_HOME: join(project, ".tern") };
  // flow.register() from a plain ES module script, before anything else is registered.
  const script = await exec(runtime.node, ["register.mjs"], { cwd: project, env: projectEnv(runtime, env) });
  expect(JSON.parse(script.stdout)).toMatchObject({ name: "hello", project: "demo", version: 1, status: "new" });

  const registered = await npxTern(
    project,
    runtime,
    ["register", "flows/etl.ts", "flows/report.mts", "flows/hello.mjs", "--project", "demo", "--json"],
    env,
  );
  const results = JSON.parse(registered.stdout) as Array<{ name: string; status: string }>;
  expect(results.map((r) => [r.name, r.status])).toEqual([
    ["etl", "new"],
    ["report", "new"],
    ["hello", "unchanged"],
  ]);

  // A value the parameter's schema refuses starts no run, and says which parameter and why.
  await expect(
    npxTern(project, runtime, ["run", "etl", "--project", "demo", "--param", "factor=abc"], env),
  ).rejects.toThrow(/failed \(1\)[\s\S]*parameter "factor" is "abc", expected number/);

  const ids: Record<string, string> = {};
  for (const [flow, params] of [
    ["etl", ["--param", "factor=2"]],
    ["report", []],
    ["hello", ["--param", "name=tern"]],
  ] as const) {
    const created = await npxTern(project, runtime, ["run", flow, "--project", "demo", ...params, "--json"], env);
    ids[flow] = (JSON.parse(created.stdout) as { id: string }).id;
  }
  const agent = await npxTern(project, runtime, ["agent", "--once"], env);
  expect(agent.stderr).toContain("claimed 3, submitted 3");
  // The runners kept their leases from the installed CLI's worker module, not from a fallback.
  expect(agent.stderr).not.toMatch(/lease keeper/);

  const show = async (id: string) =>
    JSON.parse((await npxTern(project, runtime, ["runs", "show", id, "--json"], env)).stdout) as RunView;
  const etl = await show(ids.etl as string);
  expect(etl.state, etl.reason).toBe("Success");
  expect(etl.outputs?.data?.value).toEqual([2, 4, 6]);
  expect(etl.outputs?.count?.value).toBe(3);
  expect((await show(ids.report as string)).outputs?.total?.value).toBe(15);
  expect((await show(ids.hello as string)).outputs?.greeting?.value).toBe("hello tern");
  const logs = await npxTern(project, runtime, ["logs", ids.etl as string], env);
  expect(logs.stdout).toContain("loaded 2,4,6");

  // A scheduled flow: its schedules listed in words, and an agent that polls every minute creates
  // the minutely schedule's runs three minutes ahead.
  await npxTern(project, runtime, ["register", "flows/nightly.ts", "--project", "demo"], env);
  const schedules = JSON.parse((await npxTern(project, runtime, ["schedules", "--json"], env)).stdout) as Array<{
    name: string;
    description: string;
    nextTicks: Array<{ utc: string; local: string }>;
  }>;
  expect(schedules.map((s) => [s.name, s.description])).toEqual([
    ["cron 0 3 * * * Europe/Berlin", "At 03:00 (Europe/Berlin)"],
    ["minutely", "Every minute"],
  ]);
  expect(schedules[0]?.nextTicks[0]?.local).toMatch(/T03:00:00\+0[12]:00$/);
  const polled = await npxTern(project, runtime, ["agent", "--once", "--poll-interval-ms", "60000", "--json"], env);
  const poll = polled.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { event: string; scheduled?: string[] })
    .find((e) => e.event === "polled");
  expect(poll?.scheduled?.length).toBeGreaterThanOrEqual(3);

  // A flow kept on a branch of a Git repository, run by an agent whose Git cache was emptied.
  const gitEnv = { ...env, TERN_FLOWS_GIT_URL: await git.createRepository(`user-${++repositories}`) };
  await npxTern(project, runtime, ["register", "flows/kept-in-git.ts", "--project", "demo"], gitEnv);
  await rm(join(project, ".tern", "cache", "git"), { recursive: true, force: true });
  const created = await npxTern(project, runtime, ["run", "kept-in-git", "--project", "demo", "--json"], gitEnv);
  await npxTern(project, runtime, ["agent", "--once"], gitEnv);
  const kept = await show((JSON.parse(created.stdout) as { id: string }).id);
  expect(kept.state, kept.reason).toBe("Success");
  expect(kept.outputs?.doubled?.value).toBe(42);
}

/**
 * A flow kept in a container image on the test registry: built on the base with no Docker daemon
 * and pushed (an unchanged flow sends nothing), then run by an agent that reads the image's flow
 * layer from the registry.
 */
async function registerAndRunInImage(project: string, runtime: NodeRuntime): Promise<void> {
  const repository = `user-${++repositories}/flows`;
  const env = {
    TERN_HOME: join(project, ".tern"),
    TERN_FLOWS_REGISTRY: registry.host,
    TERN_FLOWS_REPOSITORY: repository,
    TERN_FLOWS_BASE_IMAGE: base.reference,
  };
  const registerDocker = async () => {
    const args = ["register", "flows/kept-in-docker.ts", "--project", "demo", "--json"];
    const out = await npxTern(project, runtime, args, env);
    const results = JSON.parse(out.stdout) as Array<{
      name: string;
      status: string;
      location: string;
      bytesUploaded: number;
    }>;
    expect(results).toHaveLength(1);
    return results[0] as (typeof results)[number];
  };
  const baked = await registerDocker();
  expect(baked).toMatchObject({ name: "kept-in-docker", status: "new" });
  expect(baked.bytesUploaded).toBeGreaterThan(0);
  expect(baked.location).toMatch(new RegExp(`^${registry.host}/${repository}@sha256:[0-9a-f]{64}$`));
  expect(await registerDocker()).toMatchObject({ status: "unchanged", bytesUploaded: 0, location: baked.location });
  // The image the version names: the base's layers, then the flow's; the base's config and the flow's Env.
  const image = await imageOf(repository, baked.location.slice(baked.location.indexOf("@") + 1));
  expect(image.layers.slice(0, -1)).toEqual(base.layers["linux/amd64"]);
  expect(image.config.config.Env).toEqual([...base.env, "FLOW_TEAM=data"]);
  expect(image.config.config.Entrypoint).toEqual(base.entrypoint);

  const created = await npxTern(project, runtime, ["run", "kept-in-docker", "--project", "demo", "--json"], env);
  await npxTern(project, runtime, ["agent", "--once"], env);
  const { id } = JSON.parse(created.stdout) as { id: string };
  const ran = JSON.parse((await npxTern(project, runtime, ["runs", "show", id, "--json"], env)).stdout) as RunView;
  expect(ran.state, ran.reason).toBe("Success");
  expect(ran.outputs?.tripled?.value).toBe(42);
}

/** An image's layer digests and config, read from the test registry by digest. */
async function imageOf(
  repository: string,
  digest: string,
): Promise<{ layers: string[]; config: { config: { Env: string[]; Entrypoint: string[] } } }> {
  const get = async (path: string, accept?: string) => {
    const response = await fetch(`${registry.endpoint}/v2/${repository}/${path}`, {
      headers: accept === undefined ? {} : { Accept: accept },
    });
    expect(response.status, path).toBe(200);
    return response.json();
  };
  const manifest = (await get(`manifests/${digest}`, "application/vnd.oci.image.manifest.v1+json")) as {
    config: { digest: string };
    layers: Array<{ digest: string }>;
  };
  return {
    layers: manifest.layers.map((l) => l.digest),
    config: (await get(`blobs/${manifest.config.digest}`)) as { config: { Env: string[]; Entrypoint: string[] } },
  };
}

/** `npx cdk synth` of the user's app; resolves to the asset manifest of the stack. */
async function synth(project: string, runtime: NodeRuntime): Promise<{ files: object; dockerImages: object }> {
  const out = join(project, "cdk.out");
  // No docker anywhere on PATH: only the runtime's node and the system's basic tools.
  const env = projectEnv(runtime, { PATH: `${join(runtime.node, "..")}:/usr/bin:/bin` });
  await exec(runtime.node, [join(project, "node_modules", "aws-cdk", "bin", "cdk"), "synth", "--quiet", "-o", out], {
    cwd: project,
    env,
  });
  const manifests = (await readdir(out)).filter((f) => f.endsWith(".assets.json"));
  expect(manifests).toEqual(["Tern.assets.json"]);
  return JSON.parse(await readFile(join(out, "Tern.assets.json"), "utf8")) as { files: object; dockerImages: object };
}

it("packs @tern/storage-docker with its build and README only, and the dependencies it runs with", async () => {
  const tarball = tarballs.find((t) => /[\\/]tern-storage-docker-[^\\/]+\.tgz$/.test(t)) as string;
  expect(tarball).toBeDefined();
  const entries = (await exec("tar", ["-tzf", tarball], { cwd: work })).stdout.trim().split("\n");
  expect(entries).toContain("package/package.json");
  expect(entries).toContain("package/README.md");
  expect(entries).toContain("package/dist/index.js");
  expect(entries).toContain("package/dist/index.d.ts");
  const outside = entries.filter((e) => !/^package\/(dist\/|README\.md$|package\.json$|LICENSE$)/.test(e));
  expect(outside).toEqual([]);
  expect(entries.filter((e) => /\.test\.|[\\/](src|test)[\\/]/.test(e))).toEqual([]);
  const manifest = JSON.parse(
    (await exec("tar", ["-xzOf", tarball, "package/package.json"], { cwd: work })).stdout,
  ) as {
    dependencies: Record<string, string>;
    sideEffects: unknown;
  };
  expect(Object.keys(manifest.dependencies).sort()).toEqual(["@aws-sdk/client-ecr", "@tern/core", "tar-stream", "zod"]);
  // Importing the package registers DockerStorage's type: a bundler must keep `import "@tern/storage-docker"`.
  expect(manifest.sideEffects).toContain("./dist/index.js");
  // workspace:* replaced by the version published beside it.
  const core = JSON.parse(await readFile(join(ROOT, "packages", "core", "package.json"), "utf8")) as {
    version: string;
  };
  expect(manifest.dependencies["@tern/core"]).toBe(core.version);
});

describe.each(RUNTIMES)("tern installed from its tarballs, under %s", (name) => {
  let node: NodeRuntime;
  let esm: string;
  let cjs: string;

  beforeAll(async () => {
    ({ node, esm, cjs } = await (projects.get(name) as Promise<Projects>));
  }, 1_200_000);

  it("registers, runs and reports flows in an ES module project", async () => {
    await registerAndRun(esm, node);
  }, 240_000);

  it("registers, runs and reports flows in a CommonJS project", async () => {
    await registerAndRun(cjs, node);
  }, 240_000);

  // Once per Node, in the ES module project: the flow file is bundled the same way in either kind.
  it("registers a flow kept in a container image on a registry and runs it from there", async () => {
    await registerAndRunInImage(esm, node);
  }, 120_000);

  it("synthesizes a user's CDK app (ES module) with TernStack and no Docker image asset", async () => {
    const assets = await synth(esm, node);
    expect(assets.dockerImages).toEqual({});
    expect(Object.keys(assets.files).length).toBeGreaterThan(0);
  }, 240_000);

  it("synthesizes a user's CDK app (CommonJS, require) with TernStack", async () => {
    const assets = await synth(cjs, node);
    expect(assets.dockerImages).toEqual({});
  }, 240_000);
});
