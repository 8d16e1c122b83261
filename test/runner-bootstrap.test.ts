/**
 * The runner with no image build, end to end: the runner bundle built by `bundleRunner`, uploaded
 * to S3 (s3rver); an agent configured with TERN_RUNNER_BUNDLE and its sha256; the fake ECS running
 * the task definition's real command (`node --input-type=module -e BOOTSTRAP`) with this Node,
 * the URL the agent presigned at launch in the overrides; state in DynamoDB Local. Then what the
 * bootstrap refuses: a bundle changed after its sha256 was taken, an expired URL, a missing object.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { buffer } from "node:stream/consumers";
import { gunzipSync } from "node:zlib";
import { bundleRunner } from "@tern/cli/bundle-runner";
import type { Flow } from "@tern/core";
import type { Backend } from "@tern/core/plugin";
import { LocalAgent, scheduleRun } from "@tern/core/runtime";
import {
  BOOTSTRAP,
  BOOTSTRAP_EXIT,
  bootstrapCommand,
  presignRunnerBundle,
  setEcsClientFactory,
  setS3ClientFactory,
} from "@tern/env-fargate";
import { FakeEcs } from "@tern/test-support/fake-ecs";
import {
  agentEnv,
  driveRuns,
  type FargateServers,
  startFargateServers,
  useFakeEcs,
} from "@tern/test-support/fargate-setup";
import { type ForwardingProxy, startProxy } from "@tern/test-support/fault-proxy";
import { type GitServer, startGitServer } from "@tern/test-support/git-server";
import { type Registry, startRegistry } from "@tern/test-support/registry";
import { pushBaseImage } from "@tern/test-support/registry-images";
import { type LocalServer, S3RVER_CREDENTIALS } from "@tern/test-support/servers";
import { extract } from "tar-stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runTern } from "./support/cli.js";

const NODE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-public/docker/library/node:22-bookworm-slim";
const ASSETS = "tern-assets";
const KEY = "runner/runner.mjs";

let servers: FargateServers;
let git: GitServer;
let registry: Registry;
let registryProxy: ForwardingProxy;
const registryRequests: string[] = [];
let s3: LocalServer;
let backend: Backend;
let ecs: FakeEcs;
let dir: string;
let bundle: Buffer;
let sha256: string;

/** Writes an object to s3rver (it takes unsigned requests), as `cdk deploy` uploads the asset. */
async function putObject(key: string, body: Uint8Array): Promise<void> {
  const response = await fetch(`${s3.endpoint}/${ASSETS}/${key}`, { method: "PUT", body });
  expect(response.status, await response.text()).toBe(200);
}

async function deleteObject(key: string): Promise<void> {
  const response = await fetch(`${s3.endpoint}/${ASSETS}/${key}`, { method: "DELETE" });
  expect(response.status).toBe(204);
}

function agent(): LocalAgent {
  return new LocalAgent({ backend, runnerCommand: ["tern"], concurrency: 10 });
}

/** Polls the agent until every run is final (the agent's sweep decides runs whose task died). */
const drive = (ids: readonly string[], timeoutMs = 60_000) => driveRuns(backend, agent(), ids, timeoutMs);

const schedule = async () => (await scheduleRun(backend, { project: "bootstrap", flow: "fargate-etl" })).run.id;
const taskOf = (runId: string) => ecs.launchedTasks.filter((t) => t.environment?.TERN_RUN_ID === runId);

/** Writes a gzipped layer's files under `root`, as a container's file system would hold them. */
async function unpackLayer(gzipped: Uint8Array, root: string): Promise<void> {
  const tar = extract();
  const writing = (async () => {
    for await (const entry of tar) {
      const path = join(root, entry.header.name);
      if (entry.header.type === "directory") await mkdir(path, { recursive: true });
      else if (entry.header.type === "file") {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, await buffer(entry));
      } else entry.resume();
    }
  })();
  tar.end(gunzipSync(gzipped));
  await writing;
}

/** Runs the bootstrap as the task definition's command does, outside ECS. */
function bootstrap(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const [, ...args] = bootstrapCommand();
  const child = spawn(process.execPath, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", TERN_HOME: join(dir, "bootstrap-home"), ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stderr })));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tern-bootstrap-"));
  const built = await bundleRunner(join(dir, "runner.mjs"));
  bundle = await readFile(join(dir, "runner.mjs"));
  sha256 = built.sha256;
  expect(createHash("sha256").update(bundle).digest("hex")).toBe(sha256);
  expect(built.bytes).toBe(bundle.length);
  servers = await startFargateServers({
    table: "tern-bootstrap",
    buckets: ["tern-fargate", ASSETS],
    env: {
      ...agentEnv(NODE_IMAGE),
      TERN_HOME: join(dir, "agent-home"),
      TERN_RUNNER_BUNDLE: `s3://${ASSETS}/${KEY}`,
      TERN_RUNNER_BUNDLE_SHA256: sha256,
    },
  });
  ({ s3, backend } = servers);
  await putObject(KEY, bundle);
  // The agent signs with its own credentials; s3rver checks the signature and the expiry.
  setS3ClientFactory(
    (region, { S3Client }) =>
      new S3Client({ region, endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS }),
  );
  const { etl } = (await import("@tern/test-support/fargate-flows")) as { etl: Flow };
  await etl.register("bootstrap", { backend });
  git = await startGitServer();
  registry = await startRegistry();
  registryProxy = await startProxy(registry.endpoint, (req) => {
    registryRequests.push(`${req.method} ${req.url}`);
    return "forward";
  });
  const registryHost = new URL(registryProxy.endpoint).host;
  // No runner substitution: the task definition's own command runs, "node" being this Node.
  // The task's working directory is outside the workspace, so nothing resolves from its node_modules.
  ecs = await FakeEcs.start({
    clusters: ["tern"],
    // A task of a flow image sees the image's files: the test puts its flow layer's at TERN_FLOW_DIR.
    runner: {
      command: [],
      cwd: dir,
      env: { TERN_HOME: join(dir, "task-home"), TERN_FLOW_DIR: join(dir, "image-root", "tern", "flow") },
    },
    pullableImages: (image) => image === NODE_IMAGE || image.startsWith(`${registryHost}/`),
  });
  useFakeEcs(ecs);
}, 120_000);

afterAll(async () => {
  await ecs?.close();
  await git?.stop();
  await registryProxy?.close();
  await registry?.stop();
  setEcsClientFactory(undefined);
  setS3ClientFactory(undefined);
  await servers?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("the runner bundle through the bootstrap, on a stock Node image", { timeout: 90_000 }, () => {
  it("runs a flow to Success: the task definition holds the bootstrap, the launch a presigned URL", async () => {
    const id = await schedule();
    const [run] = await drive([id]);
    expect(run?.state, run?.reason).toBe("Success");
    expect(run?.outputs?.total).toEqual({ kind: "json", value: 6 });
    expect(run?.deployment).toMatchObject({ kind: "ecs-task", runnerBundleSha256: sha256 });

    const [definition] = ecs.taskDefinitions("tern-fargate-etl");
    const container = definition?.containerDefinitions?.[0];
    expect(container?.image).toBe(NODE_IMAGE);
    expect(container?.command).toEqual(["node", "--input-type=module", "-e", BOOTSTRAP]);
    expect(container?.environment).toContainEqual({ name: "TERN_RUNNER_SHA256", value: sha256 });

    const [task] = taskOf(id);
    expect(task?.command?.[0]).toBe(process.execPath);
    const described = await ecs.waitForTask(task?.taskArn as string, "STOPPED");
    expect(described.containers?.[0]?.exitCode).toBe(0);
    const overrides = described.overrides?.containerOverrides?.[0]?.environment ?? [];
    expect(overrides.map((e) => e.name)).toEqual(["TERN_RUN_ID", "TERN_BACKEND", "TERN_RUNNER_URL"]);
    const url = new URL(overrides[2]?.value as string);
    expect(`${url.origin}${url.pathname}`).toBe(`${s3.endpoint}/${ASSETS}/${KEY}`);
    expect(url.searchParams.get("X-Amz-Expires")).toBe("3600");
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(ecs.output(task?.taskArn as string)).toMatch(/runner: run .* Success/);
    // The URL carries a signature: it is in the overrides only, never in what tern records.
    expect(JSON.stringify(await backend.getRunHistory(id))).not.toContain("X-Amz-Signature");
    expect(JSON.stringify(run)).not.toContain("X-Amz-Signature");
    // The bootstrap wrote the bundle to a fresh private file under the task's TERN_HOME.
    const [fresh] = (await readdir(join(dir, "task-home"))).filter((name) => name.startsWith("tern-runner-"));
    expect(fresh).toBeDefined();
    expect(await readFile(join(dir, "task-home", fresh as string, "runner.mjs"))).toEqual(bundle);
  });

  it("runs a flow kept in a Git repository: the runner loads GitStorage by its type", async () => {
    process.env.TERN_TEST_GIT_URL = await git.createRepository("runner-flows");
    const { fargateGit } = (await import("@tern/test-support/fargate-git-flow")) as { fargateGit: Flow };
    await fargateGit.register("bootstrap", { backend });
    const { run: scheduled } = await scheduleRun(backend, { project: "bootstrap", flow: "fargate-git" });
    const [run] = await drive([scheduled.id]);
    expect(run?.state, run?.reason).toBe("Success");
    expect(run?.outputs?.answer).toEqual({ kind: "json", value: 42 });
    const taskArn = taskOf(scheduled.id)[0]?.taskArn as string;
    await ecs.waitForTask(taskArn, "STOPPED");
    // The task fetched the branch into a cache of its own, under the task's TERN_HOME.
    expect(await readdir(join(dir, "task-home", "cache", "git"))).toHaveLength(1);
  });

  it("runs a flow kept in a container image: the task definition names it by digest, the runner reads its own files", async () => {
    process.env.TERN_TEST_REGISTRY = new URL(registryProxy.endpoint).host;
    process.env.TERN_TEST_BASE_IMAGE = (
      await pushBaseImage(registryProxy.endpoint, "base/node", { tag: "22" })
    ).reference;
    const { fargateDocker } = (await import("@tern/test-support/fargate-docker-flow")) as { fargateDocker: Flow };
    const registered = await fargateDocker.register("bootstrap", { backend });
    expect(registered.location).toMatch(/^127\.0\.0\.1:\d+\/tern\/flows@sha256:[0-9a-f]{64}$/);
    // What the container's file system holds: the image's flow layer (its last), unpacked.
    const [name, digest] = registered.location.slice(registered.location.indexOf("/") + 1).split("@") as [
      string,
      string,
    ];
    const manifest = (await (
      await fetch(`${registry.endpoint}/v2/${name}/manifests/${digest}`, {
        headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
      })
    ).json()) as { layers: Array<{ digest: string }> };
    const flowLayer = manifest.layers.at(-1)?.digest as string;
    const layer = new Uint8Array(
      await (await fetch(`${registry.endpoint}/v2/${name}/blobs/${flowLayer}`)).arrayBuffer(),
    );
    await unpackLayer(layer, join(dir, "image-root"));

    registryRequests.length = 0;
    const { run: scheduled } = await scheduleRun(backend, { project: "bootstrap", flow: "fargate-docker" });
    const [run] = await drive([scheduled.id]);
    expect(run?.state, run?.reason).toBe("Success");
    expect(run?.outputs?.answer).toEqual({ kind: "json", value: 42 });
    const [definition] = ecs.taskDefinitions("tern-fargate-docker");
    expect(definition?.containerDefinitions?.[0]?.image).toBe(registered.location);
    const taskArn = taskOf(scheduled.id)[0]?.taskArn as string;
    await ecs.waitForTask(taskArn, "STOPPED");
    // The agent read the flow's layer from the registry once (its manifest); the runner read none.
    expect(registryRequests.filter((r) => r.startsWith("GET") && r.includes(flowLayer))).toHaveLength(1);
  });

  it("keeps the lease from the bundle's own worker thread, under the bootstrap's node flags", async () => {
    // The bootstrap runs `node --input-type=module -e ...`: a worker inheriting those flags
    // cannot load the bundle, and the runner would fall back to renewing from its own thread.
    const previous = process.env.TERN_LEASE_SECONDS;
    process.env.TERN_LEASE_SECONDS = "2";
    try {
      const id = (
        await scheduleRun(backend, { project: "bootstrap", flow: "fargate-etl", parameters: { sleepMs: 6_000 } })
      ).run.id;
      const [run] = await drive([id]);
      expect(run?.state, run?.reason).toBe("Success");
      // The run is Success before the runner prints its last line and exits: read the output
      // once the task has stopped.
      const taskArn = taskOf(id)[0]?.taskArn as string;
      await ecs.waitForTask(taskArn, "STOPPED");
      const output = ecs.output(taskArn);
      expect(output).toMatch(/runner: run .* Success/);
      expect(output).not.toMatch(/lease keeper/);
    } finally {
      if (previous === undefined) delete process.env.TERN_LEASE_SECONDS;
      else process.env.TERN_LEASE_SECONDS = previous;
    }
  });

  it("refuses a bundle changed after its sha256 was taken: the run fails, saying the integrity check failed", async () => {
    const tampered = Buffer.concat([bundle, Buffer.from("\nconsole.log('not what was deployed');\n")]);
    await putObject(KEY, tampered);
    try {
      const id = await schedule();
      const [run] = await drive([id]);
      expect(run?.state).toBe("Failed");
      expect(run?.reason).toMatch(/^the runner bundle's integrity check failed: ECS task [0-9a-f]{32} .*exit code 70/);
      expect(run?.reason).toMatch(/Redeploy the stack/);
      const [task] = taskOf(id);
      expect(task?.containers?.[0]?.exitCode).toBe(BOOTSTRAP_EXIT.integrity);
      const got = createHash("sha256").update(tampered).digest("hex");
      expect(ecs.output(task?.taskArn as string, "stderr")).toBe(
        `tern-bootstrap: runner bundle integrity check failed: sha256 is ${got}, expected ${sha256}: the object was changed after deploy; redeploy the stack\n`,
      );
      expect(ecs.output(task?.taskArn as string, "stdout")).not.toContain("not what was deployed");
    } finally {
      await putObject(KEY, bundle);
    }
  });

  it("fails a run whose bundle object is gone, with the download failure, which tern logs reads from the task's log stream", async () => {
    await deleteObject(KEY);
    let id: string;
    let taskArn: string;
    try {
      id = await schedule();
      const [run] = await drive([id]);
      expect(run?.state).toBe("Failed");
      expect(run?.reason).toMatch(/could not download the runner bundle \(exit code 71/);
      const [task] = taskOf(id);
      taskArn = task?.taskArn as string;
      expect(ecs.output(taskArn, "stderr")).toBe(
        "tern-bootstrap: runner bundle download failed (HTTP 404): the bundle object is gone; redeploy the stack\n",
      );
    } finally {
      await putObject(KEY, bundle);
    }
    // The runner never started, so the run has no log record: tern logs reads the task's stream.
    const stream = `tern/tern-runner/${taskArn.slice(taskArn.lastIndexOf("/") + 1)}`;
    const env = {
      ...agentEnv(NODE_IMAGE),
      TERN_HOME: join(dir, "cli-home"),
      TERN_BACKEND: backend.url,
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: ecs.endpoint,
    };
    const text = await runTern(["logs", id.slice(0, 8)], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`Run ${id} (Failed: `);
    expect(text.stdout).toContain(`What it printed, from CloudWatch Logs group /tern/runs, stream ${stream}:\n`);
    expect(text.stdout).toMatch(
      /\d\d:\d\d:\d\d\.\d{3} INFO {2}\[task-output\] tern-bootstrap: runner bundle download failed \(HTTP 404\): the bundle object is gone; redeploy the stack\n$/,
    );
    const json = await runTern(["logs", id, "--json"], env);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      {
        timeMs: expect.any(Number),
        level: "info",
        message:
          "tern-bootstrap: runner bundle download failed (HTTP 404): the bundle object is gone; redeploy the stack",
        source: "task-output",
        taskRunId: id,
      },
    ]);
    const shown = await runTern(["runs", "show", id], env);
    expect(shown.stdout).toContain(`logs /tern/runs ${stream})`);
  });
});

describe("the bootstrap on its own", () => {
  it("says the launch URL expired when S3 answers 403 Request has expired", async () => {
    // Signed two hours ago, valid for one: expired by the time the task starts.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() - 2 * 3600_000 });
    let url: string;
    try {
      url = await presignRunnerBundle("us-east-1", ASSETS, KEY);
    } finally {
      vi.useRealTimers();
    }
    const { code, stderr } = await bootstrap({ TERN_RUNNER_URL: url, TERN_RUNNER_SHA256: sha256 });
    expect(code).toBe(BOOTSTRAP_EXIT.download);
    expect(stderr).toBe(
      "tern-bootstrap: runner bundle download failed (HTTP 403): the launch URL expired (valid for an hour after RunTask); start a new run\n",
    );
    expect(stderr).not.toContain("X-Amz");
  });

  it("exits 64 naming what is missing, before any download", async () => {
    const noUrl = await bootstrap({ TERN_RUNNER_SHA256: sha256 });
    expect(noUrl.code).toBe(BOOTSTRAP_EXIT.missingEnvironment);
    expect(noUrl.stderr).toMatch(/^tern-bootstrap: TERN_RUNNER_URL is not set: start this task through a tern agent/);
    const badSha = await bootstrap({ TERN_RUNNER_URL: `${s3.endpoint}/${ASSETS}/${KEY}`, TERN_RUNNER_SHA256: "abc" });
    expect(badSha.code).toBe(BOOTSTRAP_EXIT.missingEnvironment);
    expect(badSha.stderr).toMatch(/^tern-bootstrap: TERN_RUNNER_SHA256 is not a sha256/);
  });

  it("retries a refused connection, then gives up with exit 71 naming the network error", async () => {
    // A port nothing listens on (any more); waits of 10, 20, 40 and 80 ms between the five attempts.
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const { code, stderr } = await bootstrap({
      TERN_RUNNER_URL: `http://127.0.0.1:${port}/runner.mjs`,
      TERN_RUNNER_SHA256: sha256,
      TERN_BOOTSTRAP_BACKOFF_MS: "10",
    });
    expect(code).toBe(BOOTSTRAP_EXIT.download);
    expect(stderr).toMatch(
      /^tern-bootstrap: runner bundle download failed after 5 attempts \(network error: ECONNREFUSED\)/,
    );
  });

  it("runs the verified bundle, whose runner refuses to start without TERN_RUN_ID (exit 64)", async () => {
    const url = await presignRunnerBundle("us-east-1", ASSETS, KEY);
    const { code, stderr } = await bootstrap({ TERN_RUNNER_URL: url, TERN_RUNNER_SHA256: sha256 });
    expect(code).toBe(64);
    expect(stderr).toMatch(/^tern-runner: TERN_RUN_ID is not set/);
  });
});
