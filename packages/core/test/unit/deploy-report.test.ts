import { isTernError } from "@tern/core";
import { describe, expect, it } from "vitest";
import { deployCustom, parseDeployReport } from "../../src/agent/deploy-custom.js";

/** A fake deploy process: a node script run as the runner command (`deploy <runId>` appended). */
function deployWith(script: string, onOutput: (line: string) => void = () => {}) {
  return deployCustom([process.execPath, "-e", script], "run-1", {}, onOutput);
}

describe("a custom environment's deploy process reports to the agent", () => {
  it.each([
    {
      what: "a plain error, as its type and message",
      report: { failed: { message: "AuditedEnvironment.setup threw TypeError: the cluster name must be a string" } },
      code: "DEPLOY",
      retryable: false,
    },
    {
      what: "a tern error, with its code and whether it is transient",
      report: { failed: { message: "the registry is throttling", code: "ENVIRONMENT", retryable: true } },
      code: "ENVIRONMENT",
      retryable: true,
    },
    {
      what: "a launch that may have happened, which stays uncertain",
      report: { failed: { message: "RunTask timed out", code: "LAUNCH_UNCERTAIN", retryable: true } },
      code: "LAUNCH_UNCERTAIN",
      retryable: true,
    },
  ])("fails with the reported message: $what", async ({ report, code, retryable }) => {
    // A stack on stderr, as an unexpected error prints: not the reason.
    const script = `console.error("Error: x\\n    at setup (file:///bundle.mjs:1:1)"); console.log(${JSON.stringify(JSON.stringify(report))}); process.exit(1)`;
    const error = await deployWith(script).catch((e: unknown) => e);
    expect(isTernError(error)).toBe(true);
    expect(error).toMatchObject({ message: report.failed.message, code, retryable });
  });

  it("passes on what the environment prints to stdout before its report, and takes the report after it", async () => {
    const lines: string[] = [];
    const script = `console.log("preparing the pool"); console.log('{"not":"a report"}'); console.log(JSON.stringify({ details: { kind: "remote" }, watch: false }))`;
    const deployment = await deployWith(script, (line) => lines.push(line));
    expect(deployment).toEqual({ details: { kind: "remote" } });
    expect(lines).toEqual(["preparing the pool", '{"not":"a report"}']);
  });

  it("says how a deploy process ended that never reported, with its last error line", async () => {
    const error = await deployWith(`console.error("out of file handles"); process.exit(3)`).catch((e: unknown) => e);
    expect((error as Error).message).toBe(
      "the custom environment's deploy process exited with code 3 without reporting; its last error output: out of file handles",
    );
  });

  it.each(["plain text", "{broken json", '{"failed":{"code":"DEPLOY"}}', '{"details":null}', "[1,2]"])(
    "takes %j for output, not a report",
    (line) => {
      expect(parseDeployReport(line)).toBeUndefined();
    },
  );
});
