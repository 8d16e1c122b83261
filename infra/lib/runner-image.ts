import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Stack } from "aws-cdk-lib";
import * as s3assets from "aws-cdk-lib/aws-s3-assets";
import type { Construct } from "constructs";

/**
 * The stock runner image: the official Node.js image as ECR Public mirrors it
 * (`public.ecr.aws/docker/library/node`), which tasks pull through an ECR pull-through cache rule,
 * so no Docker build happens anywhere and private subnets without NAT reach it through the ECR
 * VPC endpoints. The runner itself is not in the image: it is the runner bundle
 * (`assets/runner/runner.mjs`), fetched and checked against its sha256 when the task starts.
 *
 * Where the pin comes from: public Dockerfiles pinning `node:22-bookworm-slim@sha256:53ada149…`
 * (found by searching public source; one of them asserts `node --version` is v22.23.1 in it, and
 * others label it as resolved from the tag on Docker Hub). The official images are published
 * with the same manifests on Docker Hub and ECR Public, so the digest is the same on both. It is
 * the digest of the tag's image index (the multi-architecture list, linux/amd64 and linux/arm64
 * among its entries), not of one platform's manifest, so ARM64 tasks get their own image from it.
 *
 * Tasks pull by the exact version tag (`22.23.1-bookworm-slim`), not by the digest: ECR's
 * pull-through cache fetches an image it has not cached yet only when asked by tag; a first pull
 * by digest (or by tag and digest) is reported to fail as "not found" (aws/containers-roadmap
 * issue 2837), and the first pull of a new stack is always a first pull. A version tag of the
 * official image changes only when Debian's packages are rebuilt for that same Node.js release,
 * and stops changing once the next release is out. Set `digest` to pull by digest, once the
 * cache holds that image (for example after one task pulled it by tag).
 *
 * To update: pick the current Node.js 22 release (https://nodejs.org/en/about/previous-releases),
 * then `docker buildx imagetools inspect public.ecr.aws/docker/library/node:<version>-bookworm-slim`
 * (or `crane digest`) prints the index digest; change both fields below and the README's table.
 */
export const STOCK_NODE_IMAGE = {
  /** The ECR Public repository, under `public.ecr.aws`. */
  repository: "docker/library/node",
  tag: "22.23.1-bookworm-slim",
  /** The image index's digest when the pin was taken (multi-architecture). */
  digest: "sha256:53ada149d435c38b14476cb57e4a7da73c15595aba79bd6971b547ceb6d018bf",
} as const;

/** The repository prefix of the pull-through cache rule the stack creates (ECR allows 2 to 30 characters). */
export const DEFAULT_CACHE_PREFIX = "tern-ecr-public";

/** The stock Node.js image, pulled through an ECR pull-through cache of ECR Public. */
export interface StockImageOptions {
  /** An ECR Public repository (under `public.ecr.aws`) holding a Node.js 22 or later image. @default "docker/library/node" */
  readonly repository?: string;
  /** The tag tasks pull. @default "22.23.1-bookworm-slim" ({@link STOCK_NODE_IMAGE}) */
  readonly tag?: string;
  /**
   * Pull by this digest (`sha256:` and 64 hex digits) instead of the tag. Only once the cache
   * holds that image: ECR's pull-through cache imports images it has not cached yet by tag only.
   * @default none (pull by tag)
   */
  readonly digest?: string;
  /**
   * The repository prefix of the pull-through cache rule: cached repositories are named
   * `<prefix>/<repository>`. A rule's prefix is unique in an account and region: a second tern
   * stack there needs another prefix, or `createCacheRule: false` to use the first one's rule.
   * @default "tern-ecr-public"
   */
  readonly cachePrefix?: string;
  /** Create the pull-through cache rule (false: a rule for `public.ecr.aws` with this prefix already exists). @default true */
  readonly createCacheRule?: boolean;
}

/** A Docker build of the runner image (an image asset: needs Docker at deploy time). */
export interface BuildImageOptions {
  /** The build context: a directory, absolute or relative to the CDK app's working directory. */
  readonly directory: string;
  /** The Dockerfile, relative to `directory`. @default "Dockerfile" */
  readonly file?: string;
  /**
   * The only paths of `directory` sent to Docker (relative, Docker ignore-file syntax), e.g.
   * `["Dockerfile", "package.json", "dist"]`. @default all of it, except `.git`, `node_modules` and `cdk.out`
   */
  readonly include?: readonly string[];
}

/**
 * The image runner tasks start from.
 * - omitted or `"stock"`: the stock Node.js image through a pull-through cache ({@link STOCK_NODE_IMAGE}), no Docker;
 * - `{ stock: {...} }`: the same with other options ({@link StockImageOptions});
 * - `{ uri }`: an image you publish (`tern` on its PATH, or Node.js 22+ with `runner: "bundle"`);
 * - `{ build: {...} }`: a Docker image asset built from your directory at deploy time (needs Docker);
 * - `"build"`: a Docker image asset of this repository's `packages/env-fargate/docker/Dockerfile`
 *   (needs Docker and a checkout of the tern repository).
 */
export type RunnerImage =
  | "stock"
  | { readonly stock: StockImageOptions }
  | { readonly uri: string }
  | { readonly build: BuildImageOptions }
  | "build";

/**
 * How a task gets tern: `"bundle"` (the runner bundle, downloaded at start and checked against
 * its sha256; the image needs only `node` on its PATH) or `"image"` (the image's own `tern`).
 */
export type RunnerSource = "bundle" | "image";

/** `"bundle"` for the stock image, `"image"` for images you publish or build. */
export function defaultRunnerSource(image: RunnerImage | undefined): RunnerSource {
  return image === undefined || image === "stock" || (typeof image === "object" && "stock" in image)
    ? "bundle"
    : "image";
}

/**
 * Where the package's build (`bin/assets.ts`) writes the runner bundle:
 * `assets/runner/runner.mjs`, beside `lib/` in the repository and `dist/` when installed.
 */
export const RUNNER_BUNDLE = fileURLToPath(new URL("../assets/runner/runner.mjs", import.meta.url));

/** The runner bundle as deployed: an S3 asset and the sha256 the task checks it against. */
export interface RunnerBundle {
  readonly asset: s3assets.Asset;
  /** `s3://<bucket>/<key>` of the asset. */
  readonly s3Url: string;
  /** The ARN of that one object (what the launching functions may read). */
  readonly objectArn: string;
  /** Hex sha256 of the file, computed at synth. */
  readonly sha256: string;
}

/** The prebuilt runner bundle as an S3 asset; a clear error when it was never built. */
export function runnerBundle(scope: Construct, id: string, file: string = RUNNER_BUNDLE): RunnerBundle {
  if (!existsSync(file)) {
    throw new Error(`The runner bundle is missing (${file}): run pnpm --filter @tern/infra build`);
  }
  const sha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
  const asset = new s3assets.Asset(scope, id, { path: file });
  return {
    asset,
    s3Url: `s3://${asset.s3BucketName}/${asset.s3ObjectKey}`,
    objectArn: `arn:${Stack.of(scope).partition}:s3:::${asset.s3BucketName}/${asset.s3ObjectKey}`,
    sha256,
  };
}

/** What is wrong with stock image options, each naming the value and the fix. */
export function stockImageProblems(options: StockImageOptions): string[] {
  const problems: string[] = [];
  const prefix = options.cachePrefix;
  if (prefix !== undefined && !(CACHE_PREFIX.test(prefix) && prefix.length >= 2 && prefix.length <= 30)) {
    problems.push(
      `cachePrefix ${JSON.stringify(prefix)} is not an ECR repository prefix: 2 to 30 lowercase letters, digits, and . _ - / between them (e.g. "tern-ecr-public")`,
    );
  }
  if (options.repository !== undefined && !ECR_REPOSITORY.test(options.repository)) {
    problems.push(
      `repository ${JSON.stringify(options.repository)} is not an ECR Public repository path (e.g. "docker/library/node", without public.ecr.aws/ or a tag)`,
    );
  }
  if (options.tag !== undefined && !IMAGE_TAG.test(options.tag)) {
    problems.push(`tag ${JSON.stringify(options.tag)} is not an image tag (e.g. "${STOCK_NODE_IMAGE.tag}")`);
  }
  if (options.digest !== undefined && !IMAGE_DIGEST.test(options.digest)) {
    problems.push(`digest ${JSON.stringify(options.digest)} is not "sha256:" and 64 lowercase hex digits`);
  }
  return problems;
}

/** ECR's pattern for a pull-through cache rule's repository prefix. */
export const CACHE_PREFIX = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const ECR_REPOSITORY = CACHE_PREFIX;
export const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/;
