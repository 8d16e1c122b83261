/** Where TernHandlers finds the handlers' bundles, and what it says when the build never made them. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Stack } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { handlerCode } from "../lib/handler-code.js";
import { runnerBundle } from "../lib/runner-image.js";

describe("the handlers' prebuilt bundles", () => {
  it("when missing, make TernHandlers name the file and the build command", async () => {
    const empty = await mkdtemp(join(tmpdir(), "tern-no-assets-"));
    try {
      expect(() => handlerCode("agent", empty)).toThrow(
        `The bundle of tern's agent handler is missing (${join(empty, "agent", "index.mjs")}): run pnpm --filter @tern/infra build`,
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe("the prebuilt runner bundle", () => {
  it("when missing, makes TernRunner name the file and the build command", async () => {
    const empty = await mkdtemp(join(tmpdir(), "tern-no-runner-"));
    try {
      const stack = new Stack(new App(), "Tern");
      expect(() => runnerBundle(stack, "Bundle", join(empty, "runner.mjs"))).toThrow(
        `The runner bundle is missing (${join(empty, "runner.mjs")}): run pnpm --filter @tern/infra build`,
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
