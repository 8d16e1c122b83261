/**
 * A flow on a FargateTaskEnvironment kept in a container image (DockerStorage on the test
 * registry TERN_TEST_REGISTRY, on the base TERN_TEST_BASE_IMAGE, both read when this module is
 * first imported): the runner bundle's test runs it in its image, whose file system holds the
 * flow, and infra's Lambda bundle test loads DockerStorage by its type.
 */
import { Flow, task } from "@tern/core";
import { FargateTaskEnvironment } from "@tern/env-fargate";
import { DockerStorage } from "@tern/storage-docker";

export const fargateDocker = new Flow(
  "fargate-docker",
  {
    storage: new DockerStorage({
      registry: process.env.TERN_TEST_REGISTRY ?? "registry.example.com",
      repository: "tern/flows",
      baseImage: process.env.TERN_TEST_BASE_IMAGE ?? "registry.example.com/base/node:22",
    }),
    environment: new FargateTaskEnvironment(),
  },
  () => ({ answer: task("answer", () => 42)() }),
);
