/**
 * CloudEvents over HTTP (a Lambda function URL, or API Gateway HTTP API, payload 2.0): structured
 * and binary content modes, parsed with the `cloudevents` SDK, matched by the trigger rules (the
 * pattern sees the event's attributes and `data`), each matching rule starting a run keyed by the
 * event's source and id.
 *
 * The handler does as little as it can: the body's size is checked before anything else (before
 * the cold start's configuration, secret and table), then the signature, then the event; it
 * creates the runs and answers `202` once they exist. It does not launch them: it hands their
 * ids to the launch queue (`TERN_LAUNCH_QUEUE_URL`), which the agent function consumes with a
 * bounded concurrency, so a slow `RunTask` never holds a sender's request open (a sender that
 * times out resends), and a flood of requests cannot turn into a flood of launches. Without a
 * queue configured, the runs are launched here, by a deadline before the invocation's end.
 *
 * Authentication: with `TERN_CLOUDEVENTS_AUTH=iam` the function URL's IAM auth has already
 * checked the caller (and a request without an IAM identity is refused); with `hmac` the body
 * must be signed (see signature.ts): header `X-Tern-Signature: t=<unix seconds>,v2=<hex>`. The
 * keys are read again every few minutes, and at once (at most every 10 s) when a signature
 * matches none, so a rotated key works on a warm container.
 *
 * Replies: 202 with the run ids (the same ids for a duplicate event), 400 for a malformed event,
 * 401 for a bad or stale signature, 413 above 256 KB, 404 when no rule matches, 503 when the
 * state table or storage failed for a moment (retry: the same event finds its runs).
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from "aws-lambda";
import { type CloudEvent, HTTP } from "cloudevents";
import { matchingRules } from "../rules.js";
import { handOffLaunches, logger, runtime } from "../runtime.js";
import { verifySignature } from "../signature.js";
import { startRuns } from "../trigger-runs.js";

/** Largest body accepted (EventBridge's own event size limit). */
export const MAX_BODY_BYTES = 256 * 1024;

type Request = Pick<APIGatewayProxyEventV2, "headers" | "body" | "isBase64Encoded"> & {
  readonly requestContext?: { readonly authorizer?: { readonly iam?: unknown } } & Record<string, unknown>;
};

function reply(statusCode: number, body: Record<string, unknown>): APIGatewayProxyResultV2 {
  return { statusCode, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

/** The body's size in bytes, from its encoded form, without decoding it. */
export function bodyBytes(request: Pick<Request, "body" | "isBase64Encoded">): number {
  const raw = request.body ?? "";
  if (!request.isBase64Encoded) return Buffer.byteLength(raw, "utf8");
  const padding = raw.endsWith("==") ? 2 : raw.endsWith("=") ? 1 : 0;
  return Math.floor((raw.length * 3) / 4) - padding;
}

export async function handler(
  request: Request,
  context?: { getRemainingTimeInMillis(): number },
): Promise<APIGatewayProxyResultV2> {
  // First, before the cold start reads its configuration, secret and rules: an oversized body
  // costs nothing.
  const size = bodyBytes(request);
  if (size > MAX_BODY_BYTES) {
    return reply(413, { error: `the body has ${size} bytes; at most ${MAX_BODY_BYTES} are accepted` });
  }
  const rt = await runtime("cloudevents", { ecs: true, rules: true, cloudEvents: true });
  const auth = rt.config.cloudEvents;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  const raw = request.body ?? "";
  const body = request.isBase64Encoded ? Buffer.from(raw, "base64") : Buffer.from(raw, "utf8");
  if (auth?.auth === "hmac") {
    const ring = rt.signingKeys;
    let refused = verifySignature((await ring?.current()) ?? [], headers, body, auth.toleranceSeconds);
    if (refused?.kind === "mismatch" && ring !== undefined) {
      // Perhaps signed with a key rotated in since the keys were read: read them again (rate-limited).
      const fresh = await ring.afterMismatch();
      if (fresh !== undefined) refused = verifySignature(fresh, headers, body, auth.toleranceSeconds);
    }
    if (refused !== undefined) {
      logger.warn("refused a CloudEvent: bad signature", { reason: refused.reason });
      return reply(401, { error: refused.reason });
    }
  } else if (request.requestContext?.authorizer?.iam === undefined) {
    // IAM auth: a request with no IAM identity means the URL was exposed without it.
    logger.warn("refused a CloudEvent without an IAM identity (is the function URL's auth type AWS_IAM?)");
    return reply(401, { error: "the request carries no IAM identity; sign it with SigV4 for this function URL" });
  }
  let event: Record<string, unknown>;
  try {
    const parsed = HTTP.toEvent({ headers, body: body.toString("utf8") }) as
      | CloudEvent<unknown>
      | CloudEvent<unknown>[];
    if (Array.isArray(parsed))
      return reply(400, { error: "batched CloudEvents are not accepted; send one event per request" });
    parsed.validate();
    event = { ...parsed.toJSON() } as Record<string, unknown>;
  } catch (error) {
    return reply(400, { error: `not a valid CloudEvent: ${(error as Error).message}` });
  }
  const rules = matchingRules(rt.rules, event);
  if (rules.length === 0) {
    logger.info("no trigger rule matches the CloudEvent", { type: event.type, source: event.source, id: event.id });
    return reply(404, {
      error: `no trigger rule matches type ${JSON.stringify(event.type)} from source ${JSON.stringify(event.source)}`,
    });
  }
  const queued = rt.config.launchQueueUrl !== undefined;
  const deadlineMs =
    context === undefined ? undefined : Date.now() + context.getRemainingTimeInMillis() - rt.config.safetyMarginMs;
  let runs: Awaited<ReturnType<typeof startRuns>>;
  try {
    // source and id, unambiguously (a source may contain ':').
    runs = await startRuns(
      rt,
      rules,
      event,
      `cloudevents:${JSON.stringify([String(event.source), String(event.id)])}`,
      {
        launch: queued ? "handOff" : "inline",
        ...(deadlineMs === undefined ? {} : { deadlineMs }),
      },
    );
  } catch (error) {
    // A passing failure (the table throttled, S3 503): the sender should retry, and a retry finds the run.
    logger.error("could not start runs for a CloudEvent", { id: event.id, reason: (error as Error).message });
    return {
      statusCode: 503,
      headers: { "content-type": "application/json", "retry-after": "5" },
      body: JSON.stringify({ error: "temporarily unable to start runs; retry" }),
    };
  }
  const failed = runs.filter((r) => r.runId === undefined);
  if (failed.length === runs.length) {
    return reply(400, {
      error: "no run could be started",
      runs: failed.map((r) => ({ rule: r.rule, flow: r.flow, reason: r.reason })),
    });
  }
  if (queued) {
    // The runs exist: whatever happens to the hand-off, the agent's next tick launches them.
    await handOffLaunches(
      rt,
      runs.flatMap((r) => (r.runId === undefined ? [] : [r.runId])),
    );
  }
  return reply(202, {
    id: event.id,
    runs: runs.map((r) => ({
      rule: r.rule,
      flow: r.flow,
      runId: r.runId,
      duplicate: r.created === false,
      ...(r.runId === undefined ? { error: r.reason } : {}),
    })),
  });
}
