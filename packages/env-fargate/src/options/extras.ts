import type { JsonValue } from "@tern/core/plugin";
import * as z from "zod/mini";
import { show } from "./option-error.js";
import { findSecretLooking } from "./secret-scan.js";

/**
 * The escape hatches: further ECS fields in `extraTaskDefinition`, `extraContainerDefinition` and
 * `extraRunTask`. Only documented fields tern does not set are taken; unknown keys are refused,
 * never dropped.
 */

/** The escape hatches' allowed keys (documented ECS fields tern does not set itself). */
export const EXTRA_KEYS = {
  extraTaskDefinition: ["volumes", "pidMode", "ipcMode", "proxyConfiguration", "enableFaultInjection"],
  extraContainerDefinition: [
    "portMappings",
    "mountPoints",
    "volumesFrom",
    "ulimits",
    "healthCheck",
    "user",
    "workingDirectory",
    "readonlyRootFilesystem",
    "dockerLabels",
    "stopTimeout",
    "startTimeout",
    "systemControls",
    "repositoryCredentials",
    "dependsOn",
    "cpu",
    "memoryReservation",
    "versionConsistency",
  ],
  extraRunTask: ["enableExecuteCommand", "group", "propagateTags", "enableECSManagedTags", "volumeConfigurations"],
} as const;

/** An escape hatch's option name. */
export type ExtraOption = keyof typeof EXTRA_KEYS;

/** Keys tern sets itself, with the option that controls each. */
const OWNED_KEYS: Record<ExtraOption, Record<string, string>> = {
  extraTaskDefinition: {
    family: "family",
    cpu: "cpu",
    memory: "memory",
    taskRoleArn: "taskRoleArn",
    executionRoleArn: "executionRoleArn",
    networkMode: "(always awsvpc on Fargate)",
    requiresCompatibilities: "(always FARGATE)",
    runtimePlatform: "runtimePlatform",
    ephemeralStorage: "ephemeralStorageGiB",
    containerDefinitions: "extraContainerDefinition",
    tags: "tags",
  },
  extraContainerDefinition: {
    name: "containerName",
    image: "image",
    command: "(the runner's command; see runnerBundle)",
    environment: "environment",
    secrets: "secrets",
    logConfiguration: "logConfiguration",
    essential: "(always true)",
    linuxParameters: "(tern enables an init process)",
  },
  extraRunTask: {
    cluster: "cluster",
    taskDefinition: "(registered by content)",
    count: "(one task per run)",
    launchType: "launchType",
    capacityProviderStrategy: "capacityProviderStrategy",
    platformVersion: "platformVersion",
    networkConfiguration: "subnets, securityGroups and assignPublicIp",
    overrides: "(the run id and backend only)",
    clientToken: "(derived from the run id)",
    startedBy: "(the run id)",
    tags: "tags",
  },
};

/** ECS fields that are no user's to set, with why. */
const REFUSED_KEYS: Partial<Record<ExtraOption, Record<string, string>>> = {
  extraRunTask: {
    referenceId:
      "is not a user option: ECS documents RunTask's referenceId for its own use (volume configurations), not for callers; remove it",
  },
};

/** Why `key` is not taken in `option` (with the issue's path below the option), or undefined. */
function refusedKey(option: ExtraOption, key: string): { message: string; path: string[] } | undefined {
  const refused = REFUSED_KEYS[option]?.[key];
  if (refused !== undefined) return { message: `${refused}.`, path: [key] };
  const owner = OWNED_KEYS[option][key];
  if (owner !== undefined) {
    return {
      message: owner.startsWith("(")
        ? `tern sets ${show(key)} itself ${owner}.`
        : `tern sets ${show(key)}: use the ${owner} option instead.`,
      path: [],
    };
  }
  const allowed: readonly string[] = EXTRA_KEYS[option];
  if (allowed.includes(key)) return undefined;
  return {
    message: `unknown key ${show(key)}. Allowed: ${allowed.join(", ")}. (Check the spelling: unknown keys are never dropped silently.)`,
    path: [],
  };
}

const SECRET_HINT =
  "Options are stored in the task definition and the flow's manifest for anyone to read; keep credentials in Secrets Manager or SSM and pass them through secrets.";

/** The schema of one escape hatch: its keys checked, its value made JSON and scanned for credentials. */
export function extrasSchema(option: ExtraOption) {
  return z.pipe(
    z
      .record(z.string(), z.unknown(), {
        error: (issue) => `expected an object of ECS fields, got ${show(issue.input)}.`,
      })
      .check(
        z.superRefine((value, ctx) => {
          for (const key of Object.keys(value)) {
            const refused = refusedKey(option, key);
            if (refused === undefined) continue;
            ctx.addIssue({ code: "custom", message: refused.message, path: refused.path, input: value });
            return;
          }
        }),
      ),
    z.transform((value, payload): Record<string, JsonValue> => {
      let json: Record<string, JsonValue>;
      try {
        json = JSON.parse(JSON.stringify(value)) as Record<string, JsonValue>;
      } catch (error) {
        payload.issues.push({ code: "custom", input: value, message: `must be JSON: ${(error as Error).message}` });
        return {};
      }
      const secret = findSecretLooking(json);
      if (secret !== undefined) {
        payload.issues.push({
          code: "custom",
          input: value,
          path: [...secret.path],
          message: `${secret.why}. ${SECRET_HINT}`,
        });
      }
      return json;
    }),
  );
}
