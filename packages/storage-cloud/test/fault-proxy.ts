/**
 * A fault-injecting HTTP proxy for driver tests: it forwards requests to a local server, except
 * the ones it is told to fail, which get a 503 or have their connection reset.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What the next requests get: a failure, or `pass` to forward one untouched. */
export type Fault = "503" | "reset" | "pass";

/** A running proxy. */
export interface FaultProxy {
  readonly endpoint: string;
  /** Requests seen, in order: method, path and whether it was failed. */
  readonly requests: Array<{ method: string; path: string; fault?: Fault }>;
  /** Fails the next requests with these faults, in order. */
  failNext(...faults: Fault[]): void;
  /** Forgets faults not yet used. */
  clear(): void;
  close(): Promise<void>;
}

/** Starts a proxy on a random loopback port in front of `target` (`http://127.0.0.1:port`). */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const queue: Fault[] = [];
  const requests: FaultProxy["requests"] = [];
  const server: Server = createServer((req, res) => {
    const next = queue.shift();
    const fault = next === "pass" ? undefined : next;
    requests.push({ method: req.method ?? "", path: req.url ?? "", ...(fault === undefined ? {} : { fault }) });
    if (fault === "reset") {
      req.socket.destroy();
      return;
    }
    if (fault === "503") {
      req.resume();
      req.on("end", () => {
        res.writeHead(503, { "content-type": "application/xml", connection: "close" });
        res.end("<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>");
      });
      return;
    }
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    failNext: (...faults) => {
      queue.push(...faults);
    },
    clear: () => {
      queue.length = 0;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
