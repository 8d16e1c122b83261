/**
 * A real HTTP proxy in front of s3rver that answers chosen requests the way S3 answers when it is
 * unavailable (HTTP 503 with S3's XML error body), so the SDK's retries, the S3 driver's error
 * mapping and the handlers' replies meet a real response. s3rver cannot answer 503 by itself.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface S3FaultProxy {
  readonly endpoint: string;
  /** Requests answered 503, as `METHOD path`. */
  readonly failed: string[];
  /** Every request seen, as `METHOD path`, in order. */
  readonly seen: string[];
  /** Answers 503 to every request `matches` accepts until {@link heal}. */
  failWhen(matches: (method: string, path: string) => boolean): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startS3FaultProxy(target: string): Promise<S3FaultProxy> {
  const upstream = new URL(target);
  let matches: ((method: string, path: string) => boolean) | undefined;
  const failed: string[] = [];
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    seen.push(`${method} ${path}`);
    if (matches?.(method, path)) {
      failed.push(`${method} ${path}`);
      req.resume();
      req.on("end", () => {
        res.writeHead(503, { "content-type": "application/xml", "x-amz-request-id": "fault-proxy" });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code><Message>Service is unable to handle request.</Message></Error>',
        );
      });
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method, path, headers: req.headers },
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
    failed,
    seen,
    failWhen: (predicate) => {
      matches = predicate;
    },
    heal: () => {
      matches = undefined;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
