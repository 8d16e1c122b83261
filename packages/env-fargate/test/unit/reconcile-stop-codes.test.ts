import { type Task, TaskStopCode } from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import { decideRun, diagnoseStoppedTask, explainStopCode, STOP_CODE_EXPLANATIONS } from "../../src/index.js";
import { DEPLOYMENT, launchedRun, NOW, TASK_ARN } from "./fixtures.js";

const submitted = () => launchedRun("Submitted", {}, { id: "run-1" });

function task(
  stopCode: string,
  container: Task["containers"] extends (infer C)[] | undefined ? Partial<C> : never,
): Task {
  return {
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    desiredStatus: "STOPPED",
    stopCode: stopCode as Task["stopCode"],
    stoppedReason: "",
    containers: [{ name: "tern-runner", ...container }],
  };
}

describe("every ECS stop code has a plain-words diagnosis", () => {
  it("covers each TaskStopCode of the ECS API model", () => {
    for (const code of Object.values(TaskStopCode)) {
      expect(STOP_CODE_EXPLANATIONS[code], code).toMatch(/\w+ \w+ \w+/);
      expect(explainStopCode(code)).not.toContain(code);
      // A stopped task with that code and a runner that exited says what the code means.
      const diagnosis = diagnoseStoppedTask(task(code, { exitCode: 1, lastStatus: "STOPPED" }), DEPLOYMENT);
      expect(diagnosis.reason, code).toContain(STOP_CODE_EXPLANATIONS[code]);
    }
    expect(explainStopCode("SomethingNew")).toBe("ECS stopped it with stop code SomethingNew");
    expect(explainStopCode(undefined)).toBe("ECS gave no stop code");
  });

  it("explains InfrastructureHealth as AWS's problem: relaunched when the task never started, failed with advice when it had", () => {
    const early = diagnoseStoppedTask(task("InfrastructureHealth", { lastStatus: "PENDING" }), DEPLOYMENT);
    expect(early).toMatchObject({ transient: true, started: false });
    expect(early.reason).toMatch(/stopped by AWS: .*infrastructure under it became unhealthy/);
    const verdict = decideRun(submitted(), task("InfrastructureHealth", { lastStatus: "PENDING" }), NOW);
    expect(verdict.decision?.to).toBe("Scheduled");
    expect(verdict.decision?.reason).toMatch(/^relaunching \(1 of 2\): .*unhealthy/);

    const late = diagnoseStoppedTask(
      task("InfrastructureHealth", { exitCode: 143, lastStatus: "STOPPED" }),
      DEPLOYMENT,
    );
    expect(late).toMatchObject({ transient: false, started: true });
    expect(late.reason).toMatch(/The flow had started, so tern does not run it again by itself: start a new run/);
    expect(late.reason).toContain("CloudWatch Logs group /tern/runs");
  });

  it("explains an image with no variant for the task's architecture", () => {
    const t = task("TaskFailedToStart", {
      image: "node:22",
      reason:
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): no matching manifest for linux/arm64 in the manifest list entries",
    });
    const diagnosis = diagnoseStoppedTask(t, DEPLOYMENT);
    expect(diagnosis).toMatchObject({ transient: false, started: false });
    expect(diagnosis.reason).toMatch(/could not run the runner image node:22 on this CPU architecture/);
    expect(diagnosis.reason).toMatch(/cpuArchitecture/);
  });
});
