import type { S3Client } from "@aws-sdk/client-s3";
import { EnvironmentError } from "@tern/core/plugin";
import { type RegionalClientFactory, regionalClients } from "./clients.js";

/** How long the URL of the runner bundle that a launch passes stays valid (Fargate starts within minutes). */
export const RUNNER_URL_EXPIRY_SECONDS = 3600;

type S3Sdk = typeof import("@aws-sdk/client-s3");

/** Makes the S3 client that presigns runner bundle URLs for a region, from the SDK env-fargate loaded. */
export type S3ClientFactory = RegionalClientFactory<S3Client, S3Sdk>;

// Imported on first use: agents without a runner bundle never load the S3 SDK.
const s3Clients = regionalClients<S3Client, S3Sdk>(
  () => import("@aws-sdk/client-s3"),
  (region, sdk) => new sdk.S3Client({ region }),
);

/**
 * Replaces how the S3 clients that presign the runner bundle's URL are made (credentials, an
 * endpoint). The default is `new S3Client({ region })` with the usual credential chain. Clears
 * the clients made so far.
 *
 * @example
 * setS3ClientFactory((region, { S3Client }) => new S3Client({ region, endpoint, forcePathStyle: true }));
 */
export function setS3ClientFactory(make: S3ClientFactory | undefined): void {
  s3Clients.set(make);
}

/**
 * A GET URL of the runner bundle object, signed with the agent's credentials (local computation,
 * no request). It carries a signature: pass it to the task only, never log it.
 */
export async function presignRunnerBundle(
  region: string,
  bucket: string,
  key: string,
  expiresIn = RUNNER_URL_EXPIRY_SECONDS,
): Promise<string> {
  try {
    const [client, { GetObjectCommand }, { getSignedUrl }] = await Promise.all([
      s3Clients.get(region),
      import("@aws-sdk/client-s3"),
      import("@aws-sdk/s3-request-presigner"),
    ]);
    return await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn });
  } catch (error) {
    throw new EnvironmentError(
      `FargateTaskEnvironment: presigning the runner bundle s3://${bucket}/${key} failed: ${(error as Error).message}. The agent signs it with its own credentials; check that it has some (its role) and that the region ${region} is right.`,
      { cause: error },
    );
  }
}
