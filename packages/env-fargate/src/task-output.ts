/**
 * The end of an ECS task's output, read from the CloudWatch Logs stream awslogs wrote it to: what
 * `tern logs` shows for a run whose runner never reported (the image failed to start it, the
 * bootstrap refused the bundle, the process crashed on start).
 */
import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import {
  type DeploymentOutput,
  type DeploymentOutputReader,
  EnvironmentError,
  type RunRecord,
} from "@tern/core/plugin";
import { type RegionalClientFactory, regionalClients } from "./clients.js";
import { errorName } from "./ecs.js";
import { ecsDeployment, taskLogStream } from "./reconcile.js";

type LogsSdk = typeof import("@aws-sdk/client-cloudwatch-logs");

/** Makes the CloudWatch Logs client of a region, from the SDK env-fargate loaded. */
export type LogsClientFactory = RegionalClientFactory<CloudWatchLogsClient, LogsSdk>;

// Imported on first use: only `tern logs` of an ECS run that never reported loads it.
const logsClients = regionalClients<CloudWatchLogsClient, LogsSdk>(
  () => import("@aws-sdk/client-cloudwatch-logs"),
  (region, sdk) => new sdk.CloudWatchLogsClient({ region, maxAttempts: 3 }),
);

/**
 * Replaces how CloudWatch Logs clients are made (credentials, an endpoint). The default is
 * `new CloudWatchLogsClient({ region })`, which honours `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS` and the
 * usual credential chain. Clears the clients made so far.
 */
export function setLogsClientFactory(make: LogsClientFactory | undefined): void {
  logsClients.set(make);
}

/** The most events one GetLogEvents call returns. */
const MAX_EVENTS = 10_000;

/** Reads the last `limit` lines of the run's ECS task output (see {@link DeploymentOutputReader}). */
export const readTaskOutput: DeploymentOutputReader = async (run: RunRecord, { limit }): Promise<DeploymentOutput> => {
  const d = ecsDeployment(run);
  const nothing = (source: string, missing: string): DeploymentOutput => ({
    source,
    lines: [],
    truncated: false,
    missing,
  });
  if (d?.taskArn === undefined) return nothing("ECS", "No ECS task was started for this run.");
  const stream = taskLogStream(d, d.taskArn);
  if (d.logGroup === undefined || stream === undefined) {
    return nothing(
      `ECS task ${d.taskArn}`,
      'Its task definition sends no logs (logConfiguration: "none"); give the environment a log group to keep them.',
    );
  }
  const source = `CloudWatch Logs group ${d.logGroup}, stream ${stream}`;
  const count = Math.min(Math.max(1, Math.trunc(limit)), MAX_EVENTS);
  try {
    const [client, { GetLogEventsCommand }] = await Promise.all([
      logsClients.get(d.region),
      import("@aws-sdk/client-cloudwatch-logs"),
    ]);
    const answer = await client.send(
      new GetLogEventsCommand({ logGroupName: d.logGroup, logStreamName: stream, startFromHead: false, limit: count }),
    );
    const lines = (answer.events ?? []).map((event) => ({
      timeMs: event.timestamp ?? 0,
      text: (event.message ?? "").replace(/\r?\n$/, ""),
    }));
    return {
      source,
      lines,
      truncated: lines.length >= count,
      ...(lines.length === 0 ? { missing: "The stream holds no events: the container printed nothing." } : {}),
    };
  } catch (error) {
    const name = errorName(error);
    if (name === "ResourceNotFoundException") {
      return nothing(
        source,
        "The stream does not exist: the container never started (its image or secrets could not be fetched), or the log group's retention removed it.",
      );
    }
    if (/AccessDenied|UnrecognizedClient|InvalidClientTokenId|ExpiredToken|CredentialsProvider/i.test(name)) {
      throw new EnvironmentError(
        `reading the task's output from ${source} in ${d.region} was refused (${name}: ${(error as Error).message}). It needs credentials allowed logs:GetLogEvents on that group (the stack's CI policy grants it).`,
        { cause: error },
      );
    }
    throw new EnvironmentError(
      `reading the task's output from ${source} in ${d.region} failed: ${(error as Error).message}`,
      { cause: error, retryable: true },
    );
  }
};
