import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Flow } from "@tern/core";
import type { Backend } from "@tern/core/plugin";
import { type DynamoDbLocal, startDynamoDbLocal } from "@tern/test-support/dynamodb-local";
import { FakeEcs } from "@tern/test-support/fake-ecs";
import { openLocalTable, scheduledEvent, serverlessEnv, setEnv } from "@tern/test-support/serverless";
import { type LocalServer, startS3rver } from "@tern/test-support/servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handler as agentHandler } from "../../src/handlers/agent.js";
import { logger, resetRuntimes } from "../../src/runtime.js";

const PROJECT = "guardrails";
const IMAGE = "ghcr.io/tern/runner:test";

let db: DynamoDbLocal;
let s3: LocalServer;
let ecs: FakeEcs;
let backend: Backend;
let home: string;
let restoreEnv: () => void = () => {};

const tick = () => agentHandler(scheduledEvent(), { getRemainingTimeInMillis: () => 60_000 });

const callsOf = (operation: string) =>
  ecs.callLog.filter((c) => c.operation === operation).map((c) => c.input as Record<string, unknown>);

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "tern-guardrails-"));
  logger.setLogLevel("WARN");
  [db, s3, ecs] = await Promise.all([
    startDynamoDbLocal(),
    startS3rver(["tern-guardrails"]),
    FakeEcs.start({ clusters: ["tern"], launch: "none", pullableImages: (image) => image === IMAGE }),
  ]);
  restoreEnv = setEnv({
    ...serverlessEnv({
      home,
      table: "tern-guardrails",
      dynamodbEndpoint: db.endpoint,
      s3Endpoint: s3.endpoint,
      ecsEndpoint: ecs.endpoint,
      image: IMAGE,
    }),
    AWS_LAMBDA_FUNCTION_NAME: "tern-guardrails-test",
    // What infra/lib/handlers.ts sets on every launching function.
    TERN_ECS_ENFORCE_NETWORK: "true",
    TERN_ECS_FAMILY_PREFIX: "tern-",
    TERN_ECS_STACK_TAG: "TernStack",
  });
  backend = await openLocalTable(db.endpoint, "tern-guardrails");
  const flows = (await import("../fixtures/guardrail-flows.js")) as Record<string, Flow>;
  for (const flow of Object.values(flows)) await flow.register(PROJECT, { backend });
}, 90_000);

afterAll(async () => {
  await resetRuntimes();
  await backend?.close();
  await Promise.all([db?.stop(), s3?.stop(), ecs?.close()]);
  restoreEnv();
  await rm(home, { recursive: true, force: true });
});

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
