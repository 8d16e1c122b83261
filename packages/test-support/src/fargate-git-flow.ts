/**
 * A flow on a FargateTaskEnvironment kept on a branch of a Git repository (GitStorage, the
 * repository's URL from TERN_TEST_GIT_URL when this module is first imported): the runner
 * bundle's test and infra's Lambda bundle test register it, and the runner and the agent load
 * GitStorage by its type to run it.
 */
import { Flow, task } from "@tern/core";
import { FargateTaskEnvironment } from "@tern/env-fargate";
import { GitStorage } from "@tern/storage-git";

export const fargateGit = new Flow(
  "fargate-git",
  {
    storage: new GitStorage({ url: process.env.TERN_TEST_GIT_URL ?? "https://git.example.com/acme/flows.git" }),
    environment: new FargateTaskEnvironment(),
  },
  () => ({ answer: task("answer", () => 42)() }),
);
