import { eventBridgeEvent } from "@tern/test-support/serverless";
import { describe, expect, it } from "vitest";
import { parseTaskStateChange, parseTriggerInput } from "../../src/events.js";
import { handler as taskStateHandler } from "../../src/handlers/task-state.js";

const taskArn = "arn:aws:ecs:us-east-1:123456789012:task/tern/0123456789abcdef";
const taskState = (detail: object = { taskArn, lastStatus: "STOPPED", startedBy: "tern/run-1" }) =>
  eventBridgeEvent("ECS Task State Change", "aws.ecs", [taskArn], detail);

describe("parseTaskStateChange (Powertools' EventBridge schema)", () => {
  it("keeps the event as it came, fields the schema does not name included", () => {
    const event = { ...taskState(), "replay-name": "r", extra: { kept: true } };
    const parsed = parseTaskStateChange(event);
    expect(parsed).toEqual({ ok: true, event });
    expect(parsed.ok && parsed.event).toBe(event);
  });

  it.each([
    ["another detail-type", { ...taskState(), "detail-type": "ECS Container Instance State Change" }, /detail-type/],
    ["a detail without taskArn", taskState({ lastStatus: "STOPPED" }), /detail\.taskArn/],
    ["a taskArn that is not a string", taskState({ taskArn: 7 }), /detail\.taskArn/],
    ["no EventBridge envelope", { "detail-type": "ECS Task State Change", detail: { taskArn } }, /account/],
    ["a time that is not ISO", { ...taskState(), time: "yesterday" }, /time/],
    ["not an object", "ECS Task State Change", /expected object/],
    ["nothing", undefined, /expected object/],
  ])("refuses %s, saying why", (_, input, why) => {
    const parsed = parseTaskStateChange(input);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toMatch(/^not an ECS Task State Change event: /);
    expect(!parsed.ok && parsed.reason).toMatch(why);
  });

  it("the task-state handler ignores what is not one, with the reason, before touching its runtime", async () => {
    const result = await taskStateHandler(taskState({ lastStatus: "STOPPED" }));
    expect(result).toMatchObject({ status: "ignored", reason: expect.stringMatching(/detail\.taskArn/) });
  });
});

describe("parseTriggerInput", () => {
  it("names each problem at its path", () => {
    const input = { ...eventBridgeEvent("Object Created", "aws.s3", [], {}), account: 1 };
    expect(parseTriggerInput(input)).toEqual({
      ok: false,
      reason: expect.stringMatching(/^not an EventBridge event: account: .*expected string/),
    });
  });
});
