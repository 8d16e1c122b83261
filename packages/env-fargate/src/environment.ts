import { createHash } from "node:crypto";
import type { RunTaskCommandInput } from "@aws-sdk/client-ecs";
import { Environment, type Storage } from "@tern/core";
import {
  type Deployment,
  EnvironmentError,
  type ExecuteContext,
  type FlowImage,
  type JsonValue,
  LaunchUncertainError,
  type SetupContext,
} from "@tern/core/plugin";
import { definitionHash, desiredTaskDefinition, tagList } from "./definition.js";
import {
  annotatedDefinitionProblem,
  ecsClient,
  ecsSdk,
  ensureTaskDefinition,
  errorName,
  forgetDefinition,
  isRateLimited,
  knownDefinition,
  launchFailureKind,
  rememberDefinition,
} from "./ecs.js";
import {
  type FargateJsonOptions,
  type FargateTaskEnvironmentOptions,
  overridesLength,
  type ResolvedFargateConfig,
  resolveConfig,
  validateOptions,
} from "./options.js";
import { backoffMs, launchNow, runTaskPacer, sleep } from "./pacing.js";
import { presignRunnerBundle } from "./presign.js";
import { ECS_DEPLOYMENT_KIND, type EcsDeployment, ecsDeployment, taskLogStream } from "./reconcile.js";

/** The flow-version annotation that remembers the task definition of a configuration. */
export const TASK_DEFINITION_ANNOTATION = "fargate.taskDefinition";

/** ECS's limit on the JSON of `overrides.containerOverrides`. */
export const MAX_OVERRIDES_CHARS = 8192;

/** What `setup` prepared for `execute`. */
interface Prepared {
  readonly config: ResolvedFargateConfig;
  readonly hash: string;
  taskDefinitionArn: string;
}

/**
 * The image `storage` keeps the flow version at `location` in, when it keeps flows in images
 * (Docker storage); undefined for storages of bundles, and for a storage without the hook (one
 * from an older tern, or a user's class).
 */
export function flowImageOf(storage: Storage, location: string): FlowImage | undefined {
  return storage.containerImage?.(location) ?? undefined;
}

/** The `clientToken` of a run's launch number `launch`: at most 64 characters, stable across agents. */
export function clientToken(runId: string, launch: number): string {
  const token = `tern-${runId}-${launch}`;
  if (token.length <= 64 && /^[\x21-\x7e]+$/.test(token)) return token;
  // A run id that does not fit (tern's are UUIDs): its hash, still the same for every agent.
  return `tern-${createHash("sha256").update(runId).digest("hex").slice(0, 40)}-${launch}`;
}

/** A value ECS accepts in a tag: characters it refuses become "_", at most 256 characters. */
export function tagValue(value: string): string {
  return value.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, "_").slice(0, 256);
}

/**
 * Runs each flow run as an ECS task on Fargate. `setup` registers the task definition by content
 * (reusing an ACTIVE revision with the same hash, remembered on the flow version so later runs
 * make no call at all); `execute` calls RunTask by ARN with a clientToken derived from the run
 * id, retries transient failures, and records the task ARN. Tasks that stop before the runner
 * reports are diagnosed by the agents' sweep (`reconcileEcsTasks`).
 *
 * @example
 * new Flow("etl", {
 *   environment: new FargateTaskEnvironment({ cpu: 1024, memory: 4096, labels: ["prod"] }),
 *   storage: new S3Storage({ bucket: "my-flows" }),
 * }, build);
 */
export class FargateTaskEnvironment extends Environment {
  static override readonly type: string = "FargateTaskEnvironment";
  static readonly builtIn = true;

  /** The options as given (JSON), validated. Defaults are filled where the agent runs. */
  readonly options: FargateJsonOptions;
  #prepared: Prepared | undefined;

  constructor(options: FargateTaskEnvironmentOptions = {}) {
    // (Environment's constructor refuses options that are not an object.)
    super(options);
    this.options = Object.freeze(validateOptions(options));
  }

  protected override jsonOptions(): Record<string, JsonValue> {
    return { ...(this.options as Record<string, JsonValue>) };
  }

  /**
   * The options with the agent's defaults filled in, for a flow named `flow` of `project`; with
   * `flowImage` (the version's storage keeps it in an image), the task runs that image.
   */
  resolve(
    flow: string,
    env: Readonly<Record<string, string | undefined>> = process.env,
    project?: string,
    flowImage?: FlowImage,
  ): ResolvedFargateConfig {
    return resolveConfig(this.options, flow, env, {
      ...(project === undefined ? {} : { project }),
      ...(flowImage === undefined ? {} : { flowImage }),
    });
  }

  /**
   * Finds or registers the task definition for this configuration. Order: the flow version's
   * annotation (no call), this process's cache (no call), an ACTIVE revision tagged with the
   * content hash (DescribeTaskDefinition), and only then RegisterTaskDefinition. A flow version
   * its storage keeps in an image (`Storage.containerImage`) runs that image by digest: a new
   * image is a new content hash, so a new revision.
   */
  override async setup(storage: Storage, context?: SetupContext): Promise<void> {
    const flow = context?.manifest.flow.name;
    if (flow === undefined && this.options.family === undefined) {
      throw new EnvironmentError(
        "FargateTaskEnvironment: setup needs the flow (an agent passes it) or a family option.",
      );
    }
    // The project picks its own task role when the stack gives projects their own; a flow kept
    // in an image runs in it (checked against the task before any call).
    const flowImage = context === undefined ? undefined : flowImageOf(storage, context.flowVersion.location);
    const config = this.resolve(flow ?? "", process.env, context?.flowVersion.project, flowImage);
    const definition = desiredTaskDefinition(config);
    const hash = definitionHash(definition, config.tags);
    const annotated = context?.flowVersion.annotations?.[TASK_DEFINITION_ANNOTATION] as
      | { hash?: string; arn?: string; region?: string }
      | undefined;
    // This process's cache first: it is corrected at once when a remembered revision turns out
    // to be gone. The flow version's annotation is written by flow-side code paths and anyone
    // who can write the state table: it is checked (account, Region, family, hash tag, content)
    // before it is trusted, and a bad one is replaced by a revision found or registered here.
    let arn = knownDefinition(config.region, hash);
    if (arn === undefined && annotated?.hash === hash && typeof annotated.arn === "string") {
      const problem = await annotatedDefinitionProblem(await ecsClient(config.region), annotated.arn, {
        region: config.region,
        cluster: config.cluster,
        taskRoleArn: config.taskRoleArn,
        executionRoleArn: config.executionRoleArn,
        definition,
        hash,
      });
      if (problem === undefined) arn = annotated.arn;
      else
        console.warn(
          `tern: FargateTaskEnvironment: the task definition annotated on ${flow ?? "the flow"}'s version, ${annotated.arn}, is not run: ${problem}. Using one found or registered for the configuration instead.`,
        );
    }
    if (arn === undefined) {
      const ensured = await ensureTaskDefinition(await ecsClient(config.region), definition, config.tags, hash);
      arn = ensured.arn;
    }
    rememberDefinition(config.region, hash, arn);
    if (context !== undefined && (annotated?.hash !== hash || annotated.arn !== arn)) {
      await context.annotate({ [TASK_DEFINITION_ANNOTATION]: { hash, arn, region: config.region } });
    }
    this.#prepared = { config, hash, taskDefinitionArn: arn };
  }

  /** The task definition ARN `setup` chose, once it ran. */
  get taskDefinitionArn(): string | undefined {
    return this.#prepared?.taskDefinitionArn;
  }

  override async execute(storage: Storage, _location: string, context: ExecuteContext): Promise<Deployment> {
    // Set up here when setup did not run, or ran for a version kept in another image.
    const flowImage = flowImageOf(storage, context.flowVersion.location);
    if (this.#prepared === undefined || this.#prepared.config.flowImage?.reference !== flowImage?.reference) {
      await this.setup(storage, {
        flowVersion: context.flowVersion,
        manifest: context.manifest,
        annotate: async () => {},
      });
    }
    const prepared = this.#prepared as Prepared;
    const { config } = prepared;
    const { run } = context;
    const backendUrl = context.backendUrl ?? context.runnerEnv.TERN_BACKEND;
    if (backendUrl === undefined || backendUrl.startsWith("sqlite:")) {
      throw new EnvironmentError(
        `FargateTaskEnvironment: a task on Fargate cannot reach this agent's ${backendUrl === undefined ? "embedded SQLite backend" : `backend ${backendUrl}`}. Run the agent against a shared backend: TERN_BACKEND=dynamodb://<table>?region=<region>.`,
      );
    }
    // With a runner bundle, the bootstrap downloads it through a URL signed now (one per
    // execute, so the retries below send the same request). It carries a signature: it goes
    // into the overrides and nowhere else (no log line, no error message, no deployment record).
    const runnerUrl =
      config.runner === undefined
        ? undefined
        : await presignRunnerBundle(config.region, config.runner.bucket, config.runner.key);
    const overrides = {
      containerOverrides: [
        {
          name: config.containerName,
          // The run id and the backend (and the bundle's URL) only: the runner reads parameters
          // from the backend and the flow's storage from the flow version.
          environment: [
            { name: "TERN_RUN_ID", value: run.id },
            { name: "TERN_BACKEND", value: backendUrl },
            ...(runnerUrl === undefined ? [] : [{ name: "TERN_RUNNER_URL", value: runnerUrl }]),
          ],
        },
      ],
    };
    // ECS's limit is on the whole overrides object, not only its container part.
    const overridesChars = overridesLength(overrides);
    if (overridesChars > MAX_OVERRIDES_CHARS) {
      const urlPart =
        runnerUrl === undefined
          ? ""
          : ` The runner bundle's presigned URL takes ${runnerUrl.length} of them (longer with temporary credentials; a shorter bucket name and key help).`;
      throw new EnvironmentError(
        `FargateTaskEnvironment: the overrides of run ${run.id} take ${overridesChars} characters; ECS allows ${MAX_OVERRIDES_CHARS}. The backend URL takes ${backendUrl.length} (${backendUrl.length > 80 ? `${backendUrl.slice(0, 80)}[...]` : backendUrl}).${urlPart}`,
      );
    }
    const previous = ecsDeployment(run);
    let launch = previous?.launch ?? 0;
    const relaunches = previous?.relaunches ?? 0;
    const bookkeeping = (): EcsDeployment => ({
      kind: ECS_DEPLOYMENT_KIND,
      launched: false,
      region: config.region,
      cluster: config.cluster,
      launch,
      relaunches,
      maxRelaunches: config.maxRelaunches,
      ...(previous?.previousTasks === undefined ? {} : { previousTasks: previous.previousTasks }),
    });
    const tags = {
      ...config.tags,
      "tern:run-id": tagValue(run.id),
      "tern:project": tagValue(run.project),
      "tern:flow": tagValue(run.flow),
      "tern:version": String(run.version),
    };
    const sdk = await ecsSdk();
    const client = await ecsClient(config.region);
    let reRegistered = false;
    for (let attempt = 1; ; attempt++) {
      const token = clientToken(run.id, launch);
      const input: RunTaskCommandInput = {
        ...(config.extraRunTask as Partial<RunTaskCommandInput>),
        cluster: config.cluster,
        taskDefinition: prepared.taskDefinitionArn,
        count: 1,
        ...(config.capacityProviderStrategy === undefined
          ? { launchType: config.launchType ?? "FARGATE" }
          : { capacityProviderStrategy: config.capacityProviderStrategy.map((p) => ({ ...p })) }),
        platformVersion: config.platformVersion,
        networkConfiguration: {
          awsvpcConfiguration: {
            subnets: [...config.subnets],
            securityGroups: [...config.securityGroups],
            assignPublicIp: config.assignPublicIp ? "ENABLED" : "DISABLED",
          },
        },
        overrides,
        clientToken: token,
        startedBy: `tern/${run.id}`.replace(/[^A-Za-z0-9_/-]/g, "_").slice(0, 128),
        tags: tagList(tags),
      };
      await runTaskPacer.wait();
      let taskArn: string | undefined;
      let failure: string | undefined;
      try {
        const output = await client.send(new sdk.RunTaskCommand(input));
        runTaskPacer.succeeded();
        taskArn = output.tasks?.[0]?.taskArn;
        if (taskArn === undefined) {
          failure =
            (output.failures ?? []).map((f) => [f.reason, f.detail].filter(Boolean).join(": ")).join("; ") ||
            "RunTask started no task and gave no reason";
        }
      } catch (error) {
        if (isRateLimited(error)) runTaskPacer.throttled();
        const name = errorName(error);
        const resourceIds = (error as { resourceIds?: string[] }).resourceIds;
        if (name === "ConflictException" && resourceIds?.[0] !== undefined) {
          // The token already launched a task (another agent's attempt, with other parameters): that task is this run's.
          taskArn = resourceIds[0];
        } else if (
          name === "ClientException" &&
          /inactive|unable to describe task definition|task ?definition not found/i.test((error as Error).message) &&
          !reRegistered
        ) {
          // The remembered revision was deregistered: find or register it again, once.
          reRegistered = true;
          forgetDefinition(config.region, prepared.hash);
          const ensured = await ensureTaskDefinition(client, desiredTaskDefinition(config), config.tags, prepared.hash);
          prepared.taskDefinitionArn = ensured.arn;
          rememberDefinition(config.region, prepared.hash, ensured.arn);
          attempt -= 1;
          continue;
        } else {
          const kind = launchFailureKind(error);
          if (kind === "permanent") {
            throw new EnvironmentError(`ECS RunTask failed for run ${run.id}: ${(error as Error).message}`, {
              cause: error,
            });
          }
          // Throttling or a quota (nothing started), or a timeout, a 5xx, a reset after the SDK's
          // own retries (the request may have landed): try again with the same token, so a
          // launch that happened is returned, not repeated.
          if (attempt >= config.launchAttempts) {
            throw new LaunchUncertainError(
              kind === "uncertain"
                ? `ECS RunTask for run ${run.id} kept failing (${(error as Error).message}) and may or may not have started a task; the run is handed back and launched again with the same clientToken`
                : `ECS RunTask for run ${run.id} was refused ${attempt} times for now (${(error as Error).message}); the run is handed back to be launched later, not failed`,
              { cause: error },
            );
          }
          const wait = backoffMs(attempt, config.launchBackoffMs);
          if (context.deadlineMs !== undefined && launchNow() + wait >= context.deadlineMs) {
            // The caller (a Lambda invocation) ends before the next attempt: hand the run back
            // instead of being frozen mid-retry; the next launch uses the same token.
            throw new LaunchUncertainError(
              `ECS RunTask for run ${run.id} failed (${(error as Error).message}) and its caller's deadline comes before another attempt; the run is handed back and launched again with the same clientToken`,
              { cause: error },
            );
          }
          context.onOutput?.(
            `RunTask attempt ${attempt} for run ${run.id} failed (${(error as Error).message}); retrying with the same token`,
          );
          await sleep(wait);
          continue;
        }
      }
      if (taskArn !== undefined) {
        const details: EcsDeployment = {
          ...bookkeeping(),
          launched: true,
          taskArn,
          taskDefinitionArn: prepared.taskDefinitionArn,
          clientToken: token,
          containerName: config.containerName,
          memory: config.memory,
          ...(config.flowImage === undefined ? {} : { flowImage: config.flowImage.reference }),
          ...(config.runner === undefined ? {} : { runnerBundleSha256: config.runner.sha256 }),
          ...(config.log === undefined ? {} : { logGroup: config.log.group, logStreamPrefix: config.log.streamPrefix }),
        };
        const logStream = taskLogStream(details, taskArn);
        return {
          details: { ...details, ...(logStream === undefined ? {} : { logStream }) } as unknown as Record<
            string,
            JsonValue
          >,
        };
      }
      const reason = failure ?? "unknown";
      if (launchFailureKind(reason) === "permanent") {
        throw new EnvironmentError(`ECS could not start a task for run ${run.id}: ${reason}`);
      }
      if (attempt >= config.launchAttempts) {
        // Capacity, a vCPU quota, throttling: AWS's condition, not the run's. It started no task;
        // the run is handed back (claimable again) instead of failed.
        throw new LaunchUncertainError(
          `ECS started no task for run ${run.id} in ${attempt} attempts (${reason}); the run is handed back to be launched later, not failed. If this repeats, check the account's Fargate vCPU quota and the capacity providers of cluster ${config.cluster}`,
        );
      }
      context.onOutput?.(
        `RunTask attempt ${attempt} of ${config.launchAttempts} for run ${run.id} failed (${reason}); retrying`,
      );
      // A new token for the next attempt, recorded first: an agent that takes the run over after a
      // crash continues with it instead of reusing one that may have launched a task. Without a
      // way to record it, the same token is used again (never two tasks, at worst no retry).
      if (context.saveDeployment !== undefined) {
        launch += 1;
        await context.saveDeployment(bookkeeping() as unknown as Record<string, JsonValue>);
      }
      const wait = backoffMs(attempt, config.launchBackoffMs);
      if (context.deadlineMs !== undefined && launchNow() + wait >= context.deadlineMs) {
        throw new LaunchUncertainError(
          `ECS started no task for run ${run.id} (${reason}) and its caller's deadline comes before another attempt; the run is handed back to be launched later, not failed`,
        );
      }
      await sleep(wait);
    }
  }
}

/** Rebuilds a FargateTaskEnvironment from its manifest JSON (no user code). */
export function fargateEnvironmentFromJSON(options: Record<string, JsonValue>): FargateTaskEnvironment {
  return new FargateTaskEnvironment(options as unknown as FargateTaskEnvironmentOptions);
}
