import { EnvironmentError, type FlowImage } from "@tern/core/plugin";
import { show, WHERE } from "./option-error.js";

/**
 * A flow version kept in a container image (Docker storage, `Storage.containerImage`): the task
 * runs that image, by digest, instead of the runner image. What it must be for a Fargate task is
 * decided here, with no I/O: a digest reference, a platform Fargate runs, the task's CPU
 * architecture.
 */

/** The task's `runtimePlatform.cpuArchitecture` for each platform a flow image may be built for. */
export const FLOW_IMAGE_ARCHITECTURES: Readonly<Record<string, "X86_64" | "ARM64">> = {
  "linux/amd64": "X86_64",
  "linux/arm64": "ARM64",
};

/** The platform of each CPU architecture: what the image must be built for. */
const PLATFORM_OF = { X86_64: "linux/amd64", ARM64: "linux/arm64" } as const;

/** An image pinned by digest: `<registry>/<repository>@sha256:<64 hex digits>`. */
const BY_DIGEST = /^[^\s@]+@sha256:[0-9a-f]{64}$/;

/** Whether an image reference names Amazon ECR, whose pulls need the task's execution role. */
export function isEcrImage(reference: string): boolean {
  return /\.dkr\.ecr\./.test(reference);
}

/**
 * Checks the image a flow version is kept in against the task that runs it: pinned by digest
 * (a version runs exactly the image it recorded), built for a platform Fargate runs, and for the
 * task's CPU architecture. Throws an `EnvironmentError` naming the values and the fix.
 */
export function checkFlowImage(image: FlowImage, cpuArchitecture: "X86_64" | "ARM64"): void {
  const reference = typeof image?.reference === "string" ? image.reference : undefined;
  if (reference === undefined || !BY_DIGEST.test(reference)) {
    throw new EnvironmentError(
      `${WHERE}: the flow's storage gives its image as ${show(image?.reference)}, which is not pinned by digest (<registry>/<repository>@sha256:<64 hex digits>): a task runs exactly the image its flow version recorded, never a tag that can move. Register the flow again with a storage whose containerImage answers a digest reference.`,
    );
  }
  const architecture = FLOW_IMAGE_ARCHITECTURES[image.platform];
  if (architecture === undefined) {
    throw new EnvironmentError(
      `${WHERE}: the flow's image ${reference} is built for platform ${show(image.platform)}, and Fargate runs linux/amd64 (cpuArchitecture "X86_64") and linux/arm64 ("ARM64") only: build the image for one of them (DockerStorage's platform option) and register the flow again.`,
    );
  }
  if (architecture !== cpuArchitecture) {
    const wanted = PLATFORM_OF[cpuArchitecture];
    throw new EnvironmentError(
      `${WHERE}: runtimePlatform: the flow's image ${reference} is built for ${image.platform}, but the task's cpuArchitecture is ${show(cpuArchitecture)} (${wanted}): build the image for ${wanted} (DockerStorage's platform: ${show(wanted)}) and register the flow again, or run it on ${image.platform} with runtimePlatform: { cpuArchitecture: ${show(architecture)} } in the environment's options.`,
    );
  }
}
