/**
 * The shapes of the AWS ids and names tern's options and variables take. The options schema, the
 * `TERN_ECS_*` variables' schema, the Lambda configuration and the CDK stack's configuration all
 * check with these.
 */

/** The AWS ids of a launch: network, roles, secrets, cluster and task definition family. */
export const AWS_ID_PATTERNS = {
  subnet: /^subnet-[0-9a-f]{8}([0-9a-f]{9})?$/,
  securityGroup: /^sg-[0-9a-f]{8}([0-9a-f]{9})?$/,
  roleArn: /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/,
  /** A Secrets Manager secret or an SSM parameter (what ECS reads a container's secrets from). */
  secretArn: /^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:\d{12}:secret:.+|ssm:[a-z0-9-]+:\d{12}:parameter\/.+)$/,
  secretsManagerArn: /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/,
  /** A cluster name or ARN. */
  cluster: /^([A-Za-z0-9_-]{1,255}|arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/[A-Za-z0-9_-]{1,255})$/,
  region: /^[a-z]{2}(-[a-z]+)+-\d$/,
  /** A task definition family (and a container name: the same rule). */
  family: /^[A-Za-z0-9_-]{1,255}$/,
  logGroup: /^[\w./#-]{1,512}$/,
  /** An image reference: no spaces, at most 1,024 characters. */
  image: /^\S{1,1024}$/,
} as const;

/** What ECS allows in tag keys and values. */
export const TAG_CHARACTERS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/** A sha256 as hex. */
export const SHA256 = /^[0-9a-fA-F]{64}$/;

/** The shape of a runner bundle location: `s3://<bucket>/<key>` (S3's bucket naming rules). */
export const RUNNER_BUNDLE_PATTERN = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(\S{1,1024})$/;

/** A runner bundle location split into its bucket and key, or undefined when it is not one. */
export function parseRunnerBundle(url: string): { readonly bucket: string; readonly key: string } | undefined {
  const match = RUNNER_BUNDLE_PATTERN.exec(url);
  if (match === null || (match[1] as string).includes("..")) return undefined;
  return { bucket: match[1] as string, key: match[2] as string };
}
