/**
 * The tern CDK app: `pnpm cdk synth` / `pnpm cdk deploy` from infra/.
 *
 * Configuration: CDK context `tern` (JSON, e.g. `-c tern='{"agentLabels":["prod"]}'`), or a file
 * named by context `ternConfig` (default `tern.config.json` beside this app, if present). The
 * stack is environment-agnostic unless CDK_DEFAULT_ACCOUNT/REGION are set by the CLI's profile.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { parseConfig } from "../lib/config.js";
import { TernStack } from "../lib/stack.js";

const app = new App();
const here = dirname(fileURLToPath(import.meta.url));
const fromContext = app.node.tryGetContext("tern") as string | Record<string, unknown> | undefined;
const file = resolve(
  join(here, ".."),
  (app.node.tryGetContext("ternConfig") as string | undefined) ?? "tern.config.json",
);
let raw: unknown = {};
let where = "defaults";
if (fromContext !== undefined) {
  raw = typeof fromContext === "string" ? JSON.parse(fromContext) : fromContext;
  where = "context tern";
} else if (existsSync(file)) {
  raw = JSON.parse(readFileSync(file, "utf8"));
  where = file;
}
const config = parseConfig(raw, where);
new TernStack(app, (app.node.tryGetContext("stackName") as string | undefined) ?? "Tern", {
  config,
  ...(process.env.CDK_DEFAULT_ACCOUNT && process.env.CDK_DEFAULT_REGION
    ? { env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION } }
    : {}),
  description: "tern: serverless workflows (flow bucket, state table, ECS cluster, agent and trigger Lambdas)",
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
