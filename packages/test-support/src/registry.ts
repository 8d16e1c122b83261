/**
 * A real OCI registry for the Docker storage's tests: Debian's `docker-registry` (the CNCF
 * Distribution server, 2.8) on a random loopback port, plain HTTP, filesystem storage in a
 * temporary directory, deletes enabled. A registry made with `basicAuth` keeps an htpasswd file
 * (bcrypt, the only hash Distribution accepts) and answers 401 with a Basic challenge to requests
 * without those credentials. `.ci/run` installs the package.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { freePort } from "./ports.js";

export interface RegistryOptions {
  /**
   * Require HTTP basic auth with these credentials (an htpasswd file with one user).
   * @default - anonymous pushes and pulls
   */
  readonly basicAuth?: { readonly username: string; readonly password: string };
}

export interface Registry {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** `127.0.0.1:<port>`, as image references name a registry. */
  readonly host: string;
  /** The registry's storage root (`docker/registry/v2/...` below it). */
  readonly root: string;
  /** What the server has printed so far (its log level is `info`), for a failing test's message. */
  output(): string;
  stop(): Promise<void>;
}

const STARTUP_MS = 30_000;

/** Starts `docker-registry serve` and resolves once `GET /v2/` answers (200, or 401 with auth). */
export async function startRegistry(options: RegistryOptions = {}): Promise<Registry> {
  if (spawnSync("docker-registry", ["--version"], { stdio: "ignore" }).error !== undefined) {
    throw new Error(
      "docker-registry is not installed: apt-get install -y --no-install-recommends docker-registry (.ci/run does it)",
    );
  }
  const root = await mkdtemp(join(tmpdir(), "tern-registry-"));
  try {
    // freePort's port can be taken before the server binds it: try a few.
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      try {
        return await serve(root, port, options);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
}

async function serve(root: string, port: number, options: RegistryOptions): Promise<Registry> {
  const config = join(root, "config.yml");
  const auth =
    options.basicAuth === undefined
      ? ""
      : `auth:\n  htpasswd:\n    realm: tern-test\n    path: ${JSON.stringify(join(root, "htpasswd"))}\n`;
  if (options.basicAuth !== undefined) {
    const { username, password } = options.basicAuth;
    await writeFile(join(root, "htpasswd"), `${username}:${bcrypt.hashSync(password, 4)}\n`);
  }
  // JSON strings are YAML strings: the paths need no further quoting.
  await writeFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: info",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${JSON.stringify(join(root, "data"))}`,
      "  delete:",
      "    enabled: true",
      "  maintenance:",
      "    uploadpurging:",
      "      enabled: false",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      // Without a secret the server makes one up and warns about it on every start.
      "  secret: tern-test-secret",
      auth,
    ].join("\n"),
  );
  const child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const append = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntilServing(child, endpoint, () => output);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return {
    endpoint,
    host: `127.0.0.1:${port}`,
    root,
    output: () => output,
    async stop() {
      await stopChild(child);
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function waitUntilServing(child: ChildProcess, endpoint: string, output: () => string): Promise<void> {
  const deadline = Date.now() + STARTUP_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}) before it served:\n${output()}`);
    }
    try {
      const response = await fetch(`${endpoint}/v2/`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      if (response.status === 200 || response.status === 401) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`docker-registry did not answer ${endpoint}/v2/ within ${STARTUP_MS} ms:\n${output()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
