import { EnvironmentError } from "@tern/core/plugin";
import { type EcsEnv, type EcsVariable, ENVIRONMENT_DEFAULTS, GUARDRAIL_VARIABLES, readEcsEnv } from "./ecs-env.js";
import { show, WHERE } from "./option-error.js";
import type { ResolvedFargateConfig } from "./types.js";

/** The tag naming the stack on everything tern registers and runs. */
export const STACK_TAG = "tern:stack";

/** What a launch must stay within (undefined fields: not enforced). */
export interface LaunchGuardrails {
  readonly cluster?: string;
  readonly subnets?: readonly string[];
  readonly securityGroups?: readonly string[];
  readonly noPublicIp?: boolean;
  readonly familyPrefix?: string;
  /** The task roles allowed: the project's own when it has one, else the stack's. */
  readonly taskRoleArns?: readonly string[];
  /** Where each setting comes from, for the error message. */
  readonly source?: string;
}

/**
 * The variables of `env` read through the `TERN_ECS_*` schema; throws an `EnvironmentError`
 * naming the first of `names` that the schema refuses, what it must be and its value.
 */
export function ecsVariables(env: Readonly<Record<string, string | undefined>>, names: readonly EcsVariable[]): EcsEnv {
  const { values, problems } = readEcsEnv(env);
  const problem = problems.find((p) => names.includes(p.name));
  if (problem !== undefined) {
    throw new EnvironmentError(`${WHERE}: ${problem.name} ${problem.message}, got ${show(problem.value)}.`);
  }
  return values;
}

/** The variables guardrailsFromEnv reads. */
const GUARDRAIL_INPUTS: readonly EcsVariable[] = [
  GUARDRAIL_VARIABLES.enforceNetwork,
  GUARDRAIL_VARIABLES.familyPrefix,
  GUARDRAIL_VARIABLES.projectTaskRoles,
];
const NETWORK_INPUTS: readonly EcsVariable[] = [
  ENVIRONMENT_DEFAULTS.cluster,
  ENVIRONMENT_DEFAULTS.subnets,
  ENVIRONMENT_DEFAULTS.securityGroups,
  ENVIRONMENT_DEFAULTS.taskRoleArn,
];

/**
 * The guardrails the agent's environment asks for (the CDK stack sets them on every launching
 * function), or undefined when it sets none (an agent outside the stack).
 */
export function guardrailsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  project?: string,
): LaunchGuardrails | undefined {
  const guarded = ecsVariables(env, GUARDRAIL_INPUTS);
  const enforce = guarded.TERN_ECS_ENFORCE_NETWORK === "true";
  const prefix = guarded.TERN_ECS_FAMILY_PREFIX;
  if (!enforce && prefix === undefined) return undefined;
  if (!enforce) return { familyPrefix: prefix };
  const values = ecsVariables(env, NETWORK_INPUTS);
  const need = <K extends EcsVariable>(name: K): NonNullable<EcsEnv[K]> => {
    const value = values[name];
    if (value === undefined) {
      throw new EnvironmentError(
        `${WHERE}: ${GUARDRAIL_VARIABLES.enforceNetwork} is "true" but ${name} is not set: the stack's network cannot be enforced without it (the CDK stack sets both).`,
      );
    }
    return value as NonNullable<EcsEnv[K]>;
  };
  const roles = guarded.TERN_ECS_PROJECT_TASK_ROLES ?? {};
  const stackRoles = values.TERN_ECS_TASK_ROLE_ARN === undefined ? [] : [values.TERN_ECS_TASK_ROLE_ARN];
  const projectRole = project === undefined ? undefined : roles[project];
  return {
    ...(prefix === undefined ? {} : { familyPrefix: prefix }),
    cluster: need(ENVIRONMENT_DEFAULTS.cluster),
    subnets: need(ENVIRONMENT_DEFAULTS.subnets),
    securityGroups: need(ENVIRONMENT_DEFAULTS.securityGroups),
    noPublicIp: true,
    // The project's own role; else, for a project, the stack's; without one (an older caller), any of them.
    taskRoleArns:
      projectRole !== undefined
        ? [projectRole]
        : project !== undefined
          ? stackRoles
          : [...new Set([...stackRoles, ...Object.values(roles)])],
  };
}

function clusterName(cluster: string): string {
  return cluster.slice(cluster.lastIndexOf("/") + 1);
}

/** The ids of `asked` that `allowed` does not hold, or undefined when nothing is enforced. */
function outside(asked: readonly string[], allowed: readonly string[] | undefined): string[] {
  return allowed === undefined ? [] : asked.filter((id) => !allowed.includes(id));
}

/**
 * Checks a resolved configuration against the stack's guardrails: a pure function. Throws an
 * `EnvironmentError` naming the setting, what the flow asked for and what the stack allows.
 */
export function checkGuardrails(config: ResolvedFargateConfig, guardrails: LaunchGuardrails | undefined): void {
  if (guardrails === undefined) return;
  const refuse = (setting: string, asked: string, allowed: string, variable: string) =>
    new EnvironmentError(
      `${WHERE}: ${setting}: this flow asks for ${asked}, but the stack's guardrails allow only ${allowed} (${variable}, enforced for every launch). Remove ${setting} from the environment's options to use the stack's, or change the stack.`,
    );
  const { enforceNetwork } = GUARDRAIL_VARIABLES;
  if (guardrails.familyPrefix !== undefined && !config.family.startsWith(guardrails.familyPrefix)) {
    throw refuse(
      "family",
      show(config.family),
      `families starting with ${show(guardrails.familyPrefix)}`,
      GUARDRAIL_VARIABLES.familyPrefix,
    );
  }
  if (guardrails.cluster !== undefined && clusterName(config.cluster) !== clusterName(guardrails.cluster)) {
    throw refuse(
      "cluster",
      show(config.cluster),
      show(guardrails.cluster),
      `${ENVIRONMENT_DEFAULTS.cluster}, ${enforceNetwork}`,
    );
  }
  for (const setting of ["subnets", "securityGroups"] as const) {
    const allowed = guardrails[setting];
    const asked = outside(config[setting], allowed);
    if (allowed !== undefined && asked.length > 0) {
      throw refuse(
        setting,
        asked.join(", "),
        allowed.join(", "),
        `${ENVIRONMENT_DEFAULTS[setting]}, ${enforceNetwork}`,
      );
    }
  }
  if (guardrails.noPublicIp === true && config.assignPublicIp) {
    throw refuse("assignPublicIp", "a public IP (true)", "tasks without a public IP (false)", enforceNetwork);
  }
  if (guardrails.taskRoleArns !== undefined && !guardrails.taskRoleArns.includes(config.taskRoleArn ?? "")) {
    throw refuse(
      "taskRoleArn",
      show(config.taskRoleArn ?? "no task role"),
      guardrails.taskRoleArns.length === 0 ? "no task role it knows" : guardrails.taskRoleArns.join(", "),
      `${ENVIRONMENT_DEFAULTS.taskRoleArn}, ${GUARDRAIL_VARIABLES.projectTaskRoles}, ${enforceNetwork}`,
    );
  }
}
