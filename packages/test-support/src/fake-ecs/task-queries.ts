/** The fake ECS's task API apart from RunTask: DescribeTasks, StopTask and ListTasks. */
import type { DescribeTasksRequest, Failure, ListTasksRequest, StopTaskRequest, Task } from "@aws-sdk/client-ecs";
import type { Clusters } from "./clusters.js";
import { ECS_MESSAGES, EcsError, FAKE_ECS_ACCOUNT_ID } from "./errors.js";
import type { Tasks } from "./lifecycle.js";
import { render } from "./task-record.js";
import type { OperationHandlers } from "./types.js";
import { MAX_DESCRIBE_TASKS, paginate, requireString } from "./validate.js";

export class TaskQueries {
  constructor(
    private readonly region: string,
    private readonly clusters: Clusters,
    private readonly tasks: Tasks,
  ) {}

  /** The ECS operations this part serves. */
  readonly operations = {
    DescribeTasks: (input) => this.describe(input as DescribeTasksRequest),
    StopTask: (input) => this.stop(input as StopTaskRequest),
    ListTasks: (input) => this.list(input as ListTasksRequest),
  } satisfies OperationHandlers;

  describe(input: DescribeTasksRequest): unknown {
    const cluster = this.clusters.resolve(input.cluster);
    const references = input.tasks;
    if (!Array.isArray(references) || references.length === 0) {
      throw new EcsError("InvalidParameterException", "Tasks cannot be empty.");
    }
    if (references.length > MAX_DESCRIBE_TASKS) {
      throw new EcsError(
        "InvalidParameterException",
        `Tasks can have at most ${MAX_DESCRIBE_TASKS} items (got ${references.length}).`,
      );
    }
    const withTags = input.include?.includes("TAGS") ?? false;
    const tasks: Task[] = [];
    const failures: Failure[] = [];
    this.tasks.forgetStopped();
    for (const reference of references) {
      const record = this.tasks.findKnown(reference);
      if (record === undefined || record.cluster !== cluster) {
        const arn = reference.startsWith("arn:")
          ? reference
          : `arn:aws:ecs:${this.region}:${FAKE_ECS_ACCOUNT_ID}:task/${cluster}/${reference}`;
        failures.push({ arn, reason: "MISSING" });
      } else {
        tasks.push(render(record, withTags));
      }
    }
    return { tasks, failures };
  }

  stop(input: StopTaskRequest): unknown {
    const cluster = this.clusters.resolve(input.cluster);
    this.tasks.forgetStopped();
    const record = this.tasks.findKnown(requireString(input.task, "task"));
    if (record === undefined || record.cluster !== cluster) {
      throw new EcsError("InvalidParameterException", "The referenced task was not found.");
    }
    this.tasks.requestStop(record, input.reason ?? ECS_MESSAGES.stoppedByUser);
    return { task: render(record, false) };
  }

  list(input: ListTasksRequest): unknown {
    const cluster = this.clusters.resolve(input.cluster);
    if (
      input.startedBy !== undefined &&
      (input.family !== undefined || input.serviceName !== undefined || input.containerInstance !== undefined)
    ) {
      // "When you specify startedBy as the filter, it must be the only filter that you use." (API_ListTasks)
      throw new EcsError(
        "InvalidParameterException",
        "startedBy must be the only filter when it is given (besides desiredStatus).",
      );
    }
    const desiredStatus = input.desiredStatus ?? "RUNNING";
    this.tasks.forgetStopped();
    const arns = this.tasks.known
      .filter(
        (record) =>
          record.cluster === cluster &&
          record.task.desiredStatus === desiredStatus &&
          (input.startedBy === undefined || record.task.startedBy === input.startedBy) &&
          (input.family === undefined || record.definition.family === input.family) &&
          (input.launchType === undefined || record.task.launchType === input.launchType) &&
          // The fake has no services and no container instances.
          input.serviceName === undefined &&
          input.containerInstance === undefined,
      )
      .map((record) => record.task.taskArn ?? "");
    const page = paginate(arns, input.maxResults, input.nextToken);
    return { taskArns: page.items, nextToken: page.nextToken };
  }
}
