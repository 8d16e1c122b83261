/**
 * A real Git server for the Git storage's tests: bare repositories under one directory, served
 * over smart HTTP by `git http-backend` (the CGI program that ships with Git), one CGI process per
 * request behind a node:http front on a random loopback port. Pushes are enabled; a server made
 * with `token` answers 401 to requests without `Authorization: Basic <user:token>`.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface GitServer {
  /** The directory holding the bare repositories (`<root>/<name>.git`). */
  readonly root: string;
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /**
   * Creates `<name>.git`, bare and empty, whose HEAD names `head` (as a hosting service makes the
   * first branch pushed the default one): resolves its HTTP URL.
   */
  createRepository(name: string, head?: string): Promise<string>;
  /** Runs the git CLI in a repository (for what a test checks or tampers with). */
  git(name: string, args: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startGitServer(
  options: { readonly token?: { readonly username: string; readonly password: string } } = {},
): Promise<GitServer> {
  const root = await mkdtemp(join(tmpdir(), "tern-git-server-"));
  const expected =
    options.token === undefined
      ? undefined
      : `Basic ${Buffer.from(`${options.token.username}:${options.token.password}`).toString("base64")}`;
  const server = createServer((request, response) => {
    if (expected !== undefined && request.headers.authorization !== expected) {
      response.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"', "Content-Type": "text/plain" });
      response.end("authentication required\n");
      return;
    }
    serveCgi(root, request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const git = async (name: string, args: readonly string[]) =>
    (await run("git", ["-C", join(root, `${name}.git`), ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
  return {
    root,
    endpoint,
    async createRepository(name, head = "tern-flows") {
      await run("git", ["init", "--quiet", "--bare", join(root, `${name}.git`)]);
      await git(name, ["symbolic-ref", "HEAD", `refs/heads/${head}`]);
      await git(name, ["config", "http.receivepack", "true"]);
      // As hosting services do: a forced push cannot rewrite the branch.
      await git(name, ["config", "receive.denyNonFastForwards", "true"]);
      return `${endpoint}/${name}.git`;
    },
    git,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** One request through `git http-backend`: the request's facts as CGI variables, its body on stdin. */
function serveCgi(root: string, request: IncomingMessage, response: ServerResponse): void {
  const url = new URL(request.url ?? "/", "http://localhost");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: "1",
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    REQUEST_METHOD: request.method ?? "GET",
    CONTENT_TYPE: request.headers["content-type"] ?? "",
    REMOTE_ADDR: request.socket.remoteAddress ?? "127.0.0.1",
    // Pushes over HTTP need an authenticated user unless the repository allows anonymous ones.
    REMOTE_USER: "tern-test",
    GIT_PROTOCOL: String(request.headers["git-protocol"] ?? ""),
    HTTP_CONTENT_ENCODING: String(request.headers["content-encoding"] ?? ""),
  };
  if (request.headers["content-length"] !== undefined) env.CONTENT_LENGTH = request.headers["content-length"];
  const cgi = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "ignore"] });
  // A CGI that ends before reading the whole body closes its stdin: not this server's failure.
  cgi.stdin.on("error", () => {});
  request.pipe(cgi.stdin);
  let head = Buffer.alloc(0);
  let started = false;
  cgi.stdout.on("data", (chunk: Buffer) => {
    if (started) {
      response.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf("\r\n\r\n");
    const end = crlf >= 0 ? crlf : head.indexOf("\n\n");
    if (end < 0) return;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end).toString("latin1").split(/\r?\n/)) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
      else headers[name] = value;
    }
    response.writeHead(status, headers);
    started = true;
    const rest = head.subarray(end + (crlf >= 0 ? 4 : 2));
    if (rest.length > 0) response.write(rest);
  });
  cgi.stdout.on("end", () => {
    // A CGI that died before its headers: a gateway error, not an empty success.
    if (!started) response.writeHead(502, { "Content-Type": "text/plain" });
    response.end();
  });
  cgi.on("error", (error) => {
    if (!response.headersSent) response.writeHead(500, { "Content-Type": "text/plain" });
    response.end(String(error));
  });
}
