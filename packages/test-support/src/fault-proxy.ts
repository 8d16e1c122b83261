/**
 * Real HTTP proxies in front of local servers (DynamoDB Local, s3rver, the storage emulators)
 * that forward every request except the ones a test chooses to fail, which get the answer the
 * cloud service gives (a throttling 400, a 503 with S3's XML error) or a reset connection. The
 * SDKs' retries, the drivers' error mapping and the handlers' replies meet a real response;
 * the local servers cannot answer so by themselves.
 */
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What the proxy does with one request: forward it, reset its connection, or answer it itself. */
export type ProxyAnswer =
  | "forward"
  | "reset"
  | { readonly status: number; readonly headers: Record<string, string>; readonly body: string };

/** A running proxy. */
export interface ForwardingProxy {
  readonly endpoint: string;
  close(): Promise<void>;
}

/** Starts a proxy on a random loopback port in front of `target` (`http://127.0.0.1:port`). */
export async function startProxy(
  target: string,
  decide: (req: IncomingMessage) => ProxyAnswer,
): Promise<ForwardingProxy> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const answer = decide(req);
    if (answer === "reset") {
      req.socket.destroy();
      return;
    }
    if (answer !== "forward") {
      // Read the whole request first, as a server would, then answer.
      req.resume();
      req.on("end", () => {
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      });
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A proxy in front of DynamoDB Local that throttles chosen operations. */
export interface ThrottleProxy extends ForwardingProxy {
  /** Operations seen (`GetItem`, `Query`...), in order, and whether each was throttled. */
  readonly requests: Array<{ operation: string; throttled: boolean }>;
  /** Throttles the next `times` requests of `operation`. */
  throttle(operation: string, times: number): void;
}

/**
 * Answers throttled operations the way DynamoDB answers a throttled request (HTTP 400,
 * `ProvisionedThroughputExceededException`).
 */
export async function startThrottleProxy(target: string): Promise<ThrottleProxy> {
  const remaining = new Map<string, number>();
  const requests: ThrottleProxy["requests"] = [];
  const proxy = await startProxy(target, (req) => {
    const operation = String(req.headers["x-amz-target"] ?? "").replace(/^DynamoDB_\d+\./, "");
    const left = remaining.get(operation) ?? 0;
    requests.push({ operation, throttled: left > 0 });
    if (left <= 0) return "forward";
    remaining.set(operation, left - 1);
    return {
      status: 400,
      headers: { "content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "throttled" },
      body: JSON.stringify({
        __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        message: "The level of configured provisioned throughput for the table was exceeded.",
      }),
    };
  });
  return { ...proxy, requests, throttle: (operation, times) => remaining.set(operation, times) };
}

/** A proxy in front of s3rver that makes S3 unavailable for chosen requests. */
export interface S3FaultProxy extends ForwardingProxy {
  /** Requests answered 503, as `METHOD path`. */
  readonly failed: string[];
  /** Every request seen, as `METHOD path`, in order. */
  readonly seen: string[];
  /** Answers 503 to every request `matches` accepts until {@link heal}. */
  failWhen(matches: (method: string, path: string) => boolean): void;
  heal(): void;
}

/** Answers chosen requests the way S3 answers when it is unavailable (503 with S3's XML error body). */
export async function startS3FaultProxy(target: string): Promise<S3FaultProxy> {
  let matches: ((method: string, path: string) => boolean) | undefined;
  const failed: string[] = [];
  const seen: string[] = [];
  const proxy = await startProxy(target, (req) => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    seen.push(`${method} ${path}`);
    if (!matches?.(method, path)) return "forward";
    failed.push(`${method} ${path}`);
    return {
      status: 503,
      headers: { "content-type": "application/xml", "x-amz-request-id": "fault-proxy" },
      body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code><Message>Service is unable to handle request.</Message></Error>',
    };
  });
  return {
    ...proxy,
    failed,
    seen,
    failWhen: (predicate) => {
      matches = predicate;
    },
    heal: () => {
      matches = undefined;
    },
  };
}

/** What the next requests get: a failure, or `pass` to forward one untouched. */
export type Fault = "503" | "reset" | "pass";

/** A proxy for storage driver tests that fails the next requests in a given way. */
export interface FaultProxy extends ForwardingProxy {
  /** Requests seen, in order: method, path and whether it was failed. */
  readonly requests: Array<{ method: string; path: string; fault?: Fault }>;
  /** Fails the next requests with these faults, in order. */
  failNext(...faults: Fault[]): void;
  /** Forgets faults not yet used. */
  clear(): void;
}

/** Fails queued requests with a 503 or a reset connection, and forwards the others. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const queue: Fault[] = [];
  const requests: FaultProxy["requests"] = [];
  const proxy = await startProxy(target, (req) => {
    const next = queue.shift();
    const fault = next === "pass" ? undefined : next;
    requests.push({ method: req.method ?? "", path: req.url ?? "", ...(fault === undefined ? {} : { fault }) });
    if (fault === undefined) return "forward";
    if (fault === "reset") return "reset";
    return {
      status: 503,
      headers: { "content-type": "application/xml", connection: "close" },
      body: "<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>",
    };
  });
  return {
    ...proxy,
    requests,
    failNext: (...faults) => {
      queue.push(...faults);
    },
    clear: () => {
      queue.length = 0;
    },
  };
}
