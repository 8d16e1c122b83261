/** The fake ECS's errors and ECS's own wordings (sources in test/README.md). */
/** The account every ARN of the fake belongs to. */
export const FAKE_ECS_ACCOUNT_ID = "123456789012";

/** ECS's own wordings, as the fake reports them (sources in test/README.md). */
export const ECS_MESSAGES = {
  essentialContainerExited: "Essential container in task exited",
  stoppedByUser: "Task stopped by user",
  outOfMemory: "OutOfMemoryError: Container killed due to memory usage",
  concurrentRegistration: "Too many concurrent attempts to create a new revision of the specified family.",
  capacityUnavailable:
    "Capacity is unavailable at this time. Please try again later or in a different availability zone",
  networkInterfaceTimeout: "Timeout waiting for network interface provisioning to complete.",
  containerOverridesTooLong: "Container Overrides length must be at most 8192",
  clusterNotFound: "Cluster not found.",
  capacityProviderNotAssociated:
    "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.",
  vcpuLimit: "You've reached the limit on the number of vCPUs you can run concurrently",
  /** The default stoppedReason of each stop code {@link FakeEcs.stopTaskWith} produces. */
  stopReasons: {
    TaskFailedToStart:
      "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed",
    SpotInterruption: "Your Spot Task was interrupted.",
    TerminationNotice:
      "Task stopped because the underlying Fargate infrastructure is being retired (termination notice).",
    ServiceSchedulerInitiated: "Scaling activity initiated by (deployment ecs-svc/0000000000000000000)",
    InfrastructureHealth: "Task stopped because the underlying infrastructure was unhealthy.",
    UserInitiated: "Task stopped by user",
  },
  taskDefinitionNotFound: "TaskDefinition not found.",
  unableToDescribeTaskDefinition: "Unable to describe task definition.",
  /** The `stoppedReason` (and container `reason`) of a task whose image cannot be pulled. */
  cannotPullContainer: (image: string): string =>
    `CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref ${qualifiedImageRef(image)}: not found`,
} as const;

/** An ECS error response: HTTP 400 with `{"__type": type, "message": message, ...extra}`. */
export class EcsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly extra: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

/** The fully qualified reference containerd reports: docker.io/library/node:20 for "node:20". */
export function qualifiedImageRef(image: string): string {
  const slash = image.indexOf("/");
  const first = slash < 0 ? "" : image.slice(0, slash);
  const hasRegistry = first.includes(".") || first.includes(":") || first === "localhost";
  const ref = hasRegistry ? image : `docker.io/${slash < 0 ? `library/${image}` : image}`;
  const name = ref.slice(ref.lastIndexOf("/") + 1);
  return name.includes(":") || name.includes("@") ? ref : `${ref}:latest`;
}
