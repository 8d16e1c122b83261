import type { Flow } from "@tern/core";
import type { Backend } from "@tern/core/plugin";
import type { FakeEcs } from "@tern/test-support/fake-ecs";
import { scheduledEvent } from "@tern/test-support/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handler as agentHandler } from "../../src/handlers/agent.js";
import { type HandlerWorld, startHandlerWorld } from "./handler-setup.js";

const PROJECT = "guardrails";

let world: HandlerWorld | undefined;
let ecs: FakeEcs;
let backend: Backend;

const tick = () => agentHandler(scheduledEvent(), { getRemainingTimeInMillis: () => 60_000 });

const callsOf = (operation: string) =>
  ecs.callLog.filter((c) => c.operation === operation).map((c) => c.input as Record<string, unknown>);

beforeAll(async () => {
  world = await startHandlerWorld({
    name: "guardrails",
    bucket: "tern-guardrails",
    env: {
      // What infra/lib/handlers.ts sets on every launching function.
      TERN_ECS_ENFORCE_NETWORK: "true",
      TERN_ECS_FAMILY_PREFIX: "tern-",
      TERN_ECS_STACK_TAG: "TernStack",
    },
  });
  [ecs] = world.ecs as [FakeEcs];
  ({ backend } = world);
  const flows = (await import("../fixtures/guardrail-flows.js")) as Record<string, Flow>;
  for (const flow of Object.values(flows)) await flow.register(PROJECT, { backend });
}, 90_000);

afterAll(() => world?.close());

describe("the stack's guardrails in the Lambda agent", { timeout: 60_000 }, () => {
  it("fails runs whose manifest asks for another subnet, a public IP or another family, naming the setting, and launches only the compliant one", async () => {
    const create = async (flow: string) => (await backend.createRun({ project: PROJECT, flow })).run.id;
    const subnetRun = await create("guarded-other-subnet");
    const publicRun = await create("guarded-public-ip");
    const familyRun = await create("guarded-other-family");
    const compliantRun = await create("guarded-compliant");

    const result = await tick();
    expect(result).toMatchObject({ claimed: 4, submitted: 1, failed: 3 });

    const subnet = await backend.getRun(subnetRun);
    expect(subnet?.state).toBe("Failed");
    expect(subnet?.reason).toMatch(
      /subnets: this flow asks for subnet-0fedcba9876543210, but the stack's guardrails allow only subnet-0123456789abcdef0 \(TERN_ECS_SUBNETS, TERN_ECS_ENFORCE_NETWORK/,
    );
    expect((await backend.getRun(publicRun))?.reason).toMatch(/assignPublicIp: this flow asks for a public IP/);
    expect((await backend.getRun(familyRun))?.reason).toMatch(
      /family: this flow asks for "admin-tools", but the stack's guardrails allow only families starting with "tern-"/,
    );

    // Nothing was registered or launched for the refused runs; the compliant one carries the stack's tag.
    expect((await backend.getRun(compliantRun))?.state).toBe("Submitted");
    const registered = callsOf("RegisterTaskDefinition");
    expect(registered.map((r) => r.family)).toEqual(["tern-guarded-compliant"]);
    expect(registered[0]?.tags).toEqual(
      expect.arrayContaining([
        { key: "tern:stack", value: "TernStack" },
        { key: "tern:definition-hash", value: expect.stringMatching(/^[0-9a-f]{64}$/) },
      ]),
    );
    const launched = callsOf("RunTask");
    expect(launched).toHaveLength(1);
    expect(launched[0]?.tags).toEqual(
      expect.arrayContaining([
        { key: "tern:stack", value: "TernStack" },
        { key: "tern:run-id", value: compliantRun },
      ]),
    );
    expect(launched[0]?.networkConfiguration).toEqual({
      awsvpcConfiguration: {
        subnets: ["subnet-0123456789abcdef0"],
        securityGroups: ["sg-0123456789abcdef0"],
        assignPublicIp: "DISABLED",
      },
    });
  });
});
