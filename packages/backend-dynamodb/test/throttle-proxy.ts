/**
 * An HTTP proxy in front of DynamoDB Local that answers chosen operations the way DynamoDB
 * answers a throttled request (HTTP 400, `ProvisionedThroughputExceededException`), so the SDK's
 * retries and the backend's error mapping meet a real response.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A running proxy. */
export interface ThrottleProxy {
  readonly endpoint: string;
  /** Operations seen (`GetItem`, `Query`...), in order, and whether each was throttled. */
  readonly requests: Array<{ operation: string; throttled: boolean }>;
  /** Throttles the next `times` requests of `operation`. */
  throttle(operation: string, times: number): void;
  close(): Promise<void>;
}

export async function startThrottleProxy(target: string): Promise<ThrottleProxy> {
  const upstream = new URL(target);
  const remaining = new Map<string, number>();
  const requests: ThrottleProxy["requests"] = [];
  const server: Server = createServer((req, res) => {
    const operation = String(req.headers["x-amz-target"] ?? "").replace(/^DynamoDB_\d+\./, "");
    const left = remaining.get(operation) ?? 0;
    requests.push({ operation, throttled: left > 0 });
    if (left > 0) {
      remaining.set(operation, left - 1);
      req.resume();
      req.on("end", () => {
        res.writeHead(400, { "content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "throttled" });
        res.end(
          JSON.stringify({
            __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            message: "The level of configured provisioned throughput for the table was exceeded.",
          }),
        );
      });
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
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
    throttle: (operation, times) => remaining.set(operation, times),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
