/** The HTTP side of the awsJson1_1 protocol. */
import type { IncomingMessage, ServerResponse } from "node:http";

export async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** awsJson1_1 sends timestamps as epoch seconds (numbers); everything else is plain JSON. */
export function send(response: ServerResponse, status: number, body: unknown, requestId: string): void {
  const text = JSON.stringify(body, function (this: Record<string, unknown>, key: string, value: unknown) {
    const raw = this[key];
    return raw instanceof Date ? raw.getTime() / 1000 : value;
  });
  response.writeHead(status, {
    "content-type": "application/x-amz-json-1.1",
    "content-length": Buffer.byteLength(text),
    "x-amzn-requestid": requestId,
  });
  response.end(text);
}
