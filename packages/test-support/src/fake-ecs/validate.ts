/** ECS's limits and the checks of request fields, as pure functions. */
import { constants as osConstants } from "node:os";
import type { ContainerDefinition, KeyValuePair, RunTaskRequest, Tag } from "@aws-sdk/client-ecs";
import { EcsError } from "./errors.js";

export const TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113.";
export const FAMILY_PATTERN = /^[A-Za-z0-9_-]{1,255}$/;
export const STARTED_BY_PATTERN = /^[A-Za-z0-9_/-]{1,128}$/;
export const CLIENT_TOKEN_PATTERN = /^[\x21-\x7e]{1,64}$/;
export const MAX_CONTAINER_OVERRIDES_CHARS = 8192;
export const MAX_TASKS_PER_RUN = 10;
export const MAX_DESCRIBE_TASKS = 100;
export const MAX_PAGE = 100;
// Fargate's task-level CPU units and the memory (MiB) each allows, Linux platform.
// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
export const FARGATE_SIZES: Readonly<Record<string, readonly [min: number, max: number, step: number]>> = {
  "256": [512, 2048, 512],
  "512": [1024, 4096, 1024],
  "1024": [2048, 8192, 1024],
  "2048": [4096, 16384, 1024],
  "4096": [8192, 30720, 1024],
  "8192": [16384, 61440, 4096],
  "16384": [32768, 122880, 8192],
};

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function requireString(value: unknown, name: string): string {
  if (typeof value !== "string" || value === "") {
    throw new EcsError("InvalidParameterException", `${name} is required and must be a non-empty string.`);
  }
  return value;
}

export function paginate(
  items: readonly string[],
  maxResults: number | undefined,
  nextToken: string | undefined,
): { items: string[]; nextToken: string | undefined } {
  const size = maxResults ?? MAX_PAGE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE) {
    throw new EcsError("InvalidParameterException", `maxResults must be between 1 and ${MAX_PAGE} (got ${size}).`);
  }
  const start = nextToken === undefined ? 0 : Number(Buffer.from(nextToken, "base64url").toString("utf8"));
  if (!Number.isInteger(start) || start < 0) throw new EcsError("InvalidParameterException", "Invalid nextToken.");
  const end = start + size;
  return {
    items: items.slice(start, end),
    nextToken: end < items.length ? Buffer.from(String(end)).toString("base64url") : undefined,
  };
}

export function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : (osConstants.signals[signal] ?? 0);
}

export function pairsToRecord(pairs: readonly KeyValuePair[] | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs ?? []) if (pair.name !== undefined) result[pair.name] = pair.value ?? "";
  return result;
}

export function withContainerDefaults(container: ContainerDefinition): ContainerDefinition {
  return {
    ...container,
    cpu: container.cpu ?? 0,
    essential: container.essential ?? true,
    portMappings: container.portMappings ?? [],
    environment: container.environment ?? [],
    mountPoints: container.mountPoints ?? [],
    volumesFrom: container.volumesFrom ?? [],
  };
}

export function validateTags(tags: readonly Tag[] | undefined): Tag[] {
  const list = tags ?? [];
  if (list.length > 50) throw new EcsError("InvalidParameterException", `At most 50 tags (got ${list.length}).`);
  for (const tag of list) {
    if (typeof tag.key !== "string" || tag.key.length < 1 || tag.key.length > 128) {
      throw new EcsError("InvalidParameterException", `Tag keys must be 1-128 characters (got "${tag.key}").`);
    }
    if ((tag.value ?? "").length > 256) {
      throw new EcsError("InvalidParameterException", `Tag values must be at most 256 characters (key "${tag.key}").`);
    }
    if (tag.key.toLowerCase().startsWith("aws:")) {
      throw new EcsError("InvalidParameterException", `Tag keys starting with "aws:" are reserved (got "${tag.key}").`);
    }
  }
  return list.map((tag) => ({ ...tag }));
}

/** ECS accepts "1 vCPU" as well as "1024" and returns CPU units. */
export function normaliseCpu(cpu: string | undefined): string | undefined {
  const vcpu = cpu === undefined ? null : /^\s*(\d+(?:\.\d+)?)\s*vcpu\s*$/i.exec(cpu);
  return vcpu === null ? cpu?.trim() : String(Math.round(Number(vcpu[1]) * 1024));
}

/** ECS accepts "2 GB" as well as "2048" and returns MiB. */
export function normaliseMemory(memory: string | undefined): string | undefined {
  const gb = memory === undefined ? null : /^\s*(\d+(?:\.\d+)?)\s*gb\s*$/i.exec(memory);
  return gb === null ? memory?.trim() : String(Math.round(Number(gb[1]) * 1024));
}

export function validateFargate(
  networkMode: string | undefined,
  cpu: string | undefined,
  memory: string | undefined,
): void {
  if (networkMode !== "awsvpc") throw new EcsError("ClientException", "Fargate only supports network mode 'awsvpc'.");
  if (cpu === undefined)
    throw new EcsError("ClientException", "Fargate requires that 'cpu' be defined at the task level.");
  if (memory === undefined) {
    throw new EcsError("ClientException", "Fargate requires that 'memory' be defined at the task level.");
  }
  const size = FARGATE_SIZES[cpu];
  const mib = Number(memory);
  if (
    size === undefined ||
    !Number.isInteger(mib) ||
    mib < size[0] ||
    mib > size[1] ||
    (mib - size[0]) % size[2] !== 0
  ) {
    throw new EcsError(
      "ClientException",
      `No Fargate configuration exists for given values: ${cpu} CPU, ${memory} memory. See the Amazon ECS documentation for the valid CPU and memory combinations.`,
    );
  }
}

/** The first provider with a base or a weight, as ECS places the first task of a strategy. */
export function pickCapacityProvider(strategy: RunTaskRequest["capacityProviderStrategy"]): string | undefined {
  if (strategy === undefined) return undefined;
  if (strategy.length === 0 || strategy.some((item) => !item.capacityProvider)) {
    throw new EcsError("InvalidParameterException", "capacityProviderStrategy items need a capacityProvider.");
  }
  const chosen =
    strategy.find((item) => (item.base ?? 0) > 0) ?? strategy.find((item) => (item.weight ?? 0) > 0) ?? strategy[0];
  return chosen?.capacityProvider;
}

/** Fargate resolves LATEST to the newest Linux platform version. */
export function resolvePlatformVersion(version: string | undefined): string {
  return version === undefined || version === "LATEST" ? "1.4.0" : version;
}
