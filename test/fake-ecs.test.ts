import { CloudWatchLogsClient, GetLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import {
  DeregisterTaskDefinitionCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ECSClient,
  ListTaskDefinitionsCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  type RegisterTaskDefinitionCommandInput,
  RunTaskCommand,
  type RunTaskCommandInput,
  StopTaskCommand,
  type Task,
} from "@aws-sdk/client-ecs";
import {
  CLIENT_TOKEN_TTL_MS,
  ECS_MESSAGES,
  FakeEcs,
  type FakeEcsOptions,
  ManualClock,
  RATE_EXCEEDED,
  type StopCodeInjection,
} from "@tern/test-support/fake-ecs";
import { afterEach, describe, expect, it } from "vitest";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const REGION = "us-east-1";
const CREDENTIALS = { accessKeyId: "fake", secretAccessKey: "fake" };
const NETWORK = { awsvpcConfiguration: { subnets: ["subnet-0abc"], assignPublicIp: "DISABLED" as const } };
const IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tern-runner:1";

const fakes: FakeEcs[] = [];
const clients: ECSClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

async function start(
  options: FakeEcsOptions = {},
  client: { maxAttempts?: number } = {},
): Promise<{ fake: FakeEcs; ecs: ECSClient }> {
  const fake = await FakeEcs.start(options);
  fakes.push(fake);
  const ecs = new ECSClient({ endpoint: fake.endpoint, region: REGION, credentials: CREDENTIALS, ...client });
  clients.push(ecs);
  return { fake, ecs };
}

/** What DescribeTasks says of a task that stopped because its essential container exited. */
const exitedTask = (containers: object[]) => ({
  lastStatus: "STOPPED",
  desiredStatus: "STOPPED",
  stopCode: "EssentialContainerExited",
  stoppedReason: ECS_MESSAGES.essentialContainerExited,
  containers,
});

/** A Fargate task definition whose one container runs `command`. */
function definition(
  family: string,
  command: string[],
  extra: Partial<RegisterTaskDefinitionCommandInput> = {},
): RegisterTaskDefinitionCommandInput {
  return {
    family,
    requiresCompatibilities: ["FARGATE"],
    networkMode: "awsvpc",
    cpu: "256",
    memory: "512",
    executionRoleArn: "arn:aws:iam::123456789012:role/tern-execution",
    taskRoleArn: "arn:aws:iam::123456789012:role/tern-task",
    runtimePlatform: { cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" },
    ephemeralStorage: { sizeInGiB: 21 },
    containerDefinitions: [
      {
        name: "runner",
        image: IMAGE,
        command,
        essential: true,
        environment: [{ name: "FROM_DEFINITION", value: "d" }],
      },
    ],
    ...extra,
  };
}

function runInput(taskDefinition: string, extra: Partial<RunTaskCommandInput> = {}): RunTaskCommandInput {
  return { cluster: "default", taskDefinition, launchType: "FARGATE", networkConfiguration: NETWORK, ...extra };
}

async function describeOne(ecs: ECSClient, taskArn: string): Promise<Task> {
  const { tasks } = await ecs.send(
    new DescribeTasksCommand({ cluster: "default", tasks: [taskArn], include: ["TAGS"] }),
  );
  const task = tasks?.[0];
  if (task === undefined) throw new Error(`DescribeTasks did not return ${taskArn}`);
  return task;
}

async function runOne(ecs: ECSClient, input: RunTaskCommandInput): Promise<string> {
  const { tasks, failures } = await ecs.send(new RunTaskCommand(input));
  expect(failures).toEqual([]);
  const taskArn = tasks?.[0]?.taskArn;
  if (taskArn === undefined) throw new Error("RunTask launched no task");
  return taskArn;
}

/** Resolves once the captured output contains `text` (the process announces it is ready). */
async function waitForOutput(fake: FakeEcs, taskArn: string, text: string): Promise<void> {
  await expect.poll(() => fake.output(taskArn), { timeout: 5000, interval: 10 }).toContain(text);
}

describe("FakeEcs task definitions", () => {
  it("keeps every revision of a family with its tags, and describes by family, family:revision and ARN", async () => {
    const { ecs } = await start();
    const tags = [{ key: "tern:flow", value: "etl" }];
    const first = await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern", "a"], { tags })));
    const second = await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern", "b"], { tags })));
    expect(first.taskDefinition).toMatchObject({
      taskDefinitionArn: "arn:aws:ecs:us-east-1:123456789012:task-definition/tern-etl:1",
      family: "tern-etl",
      revision: 1,
      status: "ACTIVE",
      cpu: "256",
      memory: "512",
      networkMode: "awsvpc",
      requiresCompatibilities: ["FARGATE"],
      ephemeralStorage: { sizeInGiB: 21 },
    });
    expect(first.taskDefinition?.registeredAt).toBeInstanceOf(Date);
    expect(first.tags).toEqual(tags);
    expect(second.taskDefinition?.revision).toBe(2);

    const latest = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "tern-etl" }));
    expect(latest.taskDefinition?.revision).toBe(2);
    expect(latest.tags).toBeUndefined();
    const byRevision = await ecs.send(
      new DescribeTaskDefinitionCommand({ taskDefinition: "tern-etl:1", include: ["TAGS"] }),
    );
    expect(byRevision.taskDefinition?.containerDefinitions?.[0]?.command).toEqual(["tern", "a"]);
    expect(byRevision.tags).toEqual(tags);
    const byArn = await ecs.send(
      new DescribeTaskDefinitionCommand({
        taskDefinition: second.taskDefinition?.taskDefinitionArn,
        include: ["TAGS"],
      }),
    );
    expect(byArn.taskDefinition?.containerDefinitions?.[0]?.command).toEqual(["tern", "b"]);
    expect(byArn.tags).toEqual(tags);
  });

  it("lists revisions newest first with DESC, pages them, and hides deregistered ones", async () => {
    const { ecs } = await start();
    for (const family of ["tern-a", "tern-a", "tern-b"]) {
      await ecs.send(new RegisterTaskDefinitionCommand(definition(family, ["tern"])));
    }
    const desc = await ecs.send(new ListTaskDefinitionsCommand({ sort: "DESC" }));
    expect(desc.taskDefinitionArns?.map((arn) => arn.split("/")[1])).toEqual(["tern-b:1", "tern-a:2", "tern-a:1"]);

    const page1 = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: "tern-a", maxResults: 1 }));
    expect(page1.taskDefinitionArns?.map((arn) => arn.split("/")[1])).toEqual(["tern-a:1"]);
    const page2 = await ecs.send(
      new ListTaskDefinitionsCommand({ familyPrefix: "tern-a", maxResults: 1, nextToken: page1.nextToken }),
    );
    expect(page2.taskDefinitionArns?.map((arn) => arn.split("/")[1])).toEqual(["tern-a:2"]);
    expect(page2.nextToken).toBeUndefined();

    const deregistered = await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: "tern-a:2" }));
    expect(deregistered.taskDefinition?.status).toBe("INACTIVE");
    const active = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: "tern-a" }));
    expect(active.taskDefinitionArns?.map((arn) => arn.split("/")[1])).toEqual(["tern-a:1"]);
    const inactive = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: "tern-a", status: "INACTIVE" }));
    expect(inactive.taskDefinitionArns?.map((arn) => arn.split("/")[1])).toEqual(["tern-a:2"]);
    const latest = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "tern-a" }));
    expect(latest.taskDefinition?.revision).toBe(1);
  });

  it("fails the injected number of registrations with ECS's concurrent-revision ClientException", async () => {
    const { fake, ecs } = await start();
    fake.failNextRegistrations(2);
    const results = await Promise.allSettled(
      [1, 2, 3].map(() => ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])))),
    );
    const rejected = results.filter((result) => result.status === "rejected");
    expect(rejected.map((result) => result.reason)).toEqual([
      expect.objectContaining({ name: "ClientException", message: ECS_MESSAGES.concurrentRegistration }),
      expect.objectContaining({ name: "ClientException", message: ECS_MESSAGES.concurrentRegistration }),
    ]);
    expect(fake.taskDefinitions("tern-etl").map((revision) => revision.revision)).toEqual([1]);
    expect(fake.calls.RegisterTaskDefinition).toBe(3);
  });

  it("rejects unknown task definitions and invalid registrations with ECS's exceptions", async () => {
    const { ecs } = await start();
    await expect(ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "nope:1" }))).rejects.toMatchObject({
      name: "ClientException",
      message: "Unable to describe task definition.",
      $metadata: { httpStatusCode: 400 },
    });
    await expect(
      ecs.send(new RegisterTaskDefinitionCommand(definition("bad family!", ["tern"]))),
    ).rejects.toMatchObject({
      name: "ClientException",
    });
    await expect(
      ecs.send(new RegisterTaskDefinitionCommand({ ...definition("tern-etl", ["tern"]), containerDefinitions: [] })),
    ).rejects.toMatchObject({ name: "ClientException", message: "Container list cannot be empty." });
    await expect(
      ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"], { cpu: "256", memory: "4096" }))),
    ).rejects.toMatchObject({ name: "ClientException", message: expect.stringContaining("No Fargate configuration") });
  });
});

describe("FakeEcs RunTask", () => {
  it("launches once for a repeated clientToken and refuses the token for a different request", async () => {
    const { fake, ecs } = await start({ launch: "none" });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    const input = runInput("tern-etl", { clientToken: "run-42-attempt-1", startedBy: "tern-run-42" });
    const first = await runOne(ecs, input);
    const again = await runOne(ecs, input);
    expect(again).toBe(first);
    expect(fake.launchedTasks.map((task) => task.taskArn)).toEqual([first]);
    expect(fake.calls.RunTask).toBe(2);
    await expect(ecs.send(new RunTaskCommand({ ...input, startedBy: "someone-else" }))).rejects.toMatchObject({
      name: "ConflictException",
    });
    expect(fake.launchedTasks).toHaveLength(1);
  });

  it("returns the injected failures without launching, one per call", async () => {
    const { fake, ecs } = await start({ launch: "none" });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    fake.failNextRunTasks([{ reason: ECS_MESSAGES.capacityUnavailable }]);
    const failed = await ecs.send(new RunTaskCommand(runInput("tern-etl")));
    expect(failed.tasks).toEqual([]);
    expect(failed.failures).toEqual([{ reason: ECS_MESSAGES.capacityUnavailable }]);
    expect(fake.launchedTasks).toHaveLength(0);
    await runOne(ecs, runInput("tern-etl"));
    expect(fake.launchedTasks).toHaveLength(1);
  });

  it("rejects container overrides over 8,192 characters, unknown clusters and awsvpc without subnets", async () => {
    const { ecs } = await start({ launch: "none", clusters: ["tern"] });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    const big = {
      containerOverrides: [{ name: "runner", environment: [{ name: "PAYLOAD", value: "x".repeat(8200) }] }],
    };
    await expect(ecs.send(new RunTaskCommand(runInput("tern-etl", { overrides: big })))).rejects.toMatchObject({
      name: "InvalidParameterException",
      message: "Container Overrides length must be at most 8192",
    });
    await expect(ecs.send(new RunTaskCommand(runInput("tern-etl", { cluster: "nope" })))).rejects.toMatchObject({
      name: "ClusterNotFoundException",
      message: "Cluster not found.",
    });
    await expect(
      ecs.send(new RunTaskCommand(runInput("tern-etl", { networkConfiguration: undefined }))),
    ).rejects.toMatchObject({ name: "InvalidParameterException" });
    await expect(ecs.send(new RunTaskCommand(runInput("tern-other")))).rejects.toMatchObject({
      name: "ClientException",
    });
    const onNamedCluster = await runOne(ecs, runInput("tern-etl", { cluster: "tern" }));
    expect(onNamedCluster).toMatch(/^arn:aws:ecs:us-east-1:123456789012:task\/tern\/[0-9a-f]{32}$/);
  });

  it("records what RunTask was given, and describes and lists tasks as ECS does", async () => {
    const { fake, ecs } = await start({ launch: "none" });
    await ecs.send(
      new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"], { tags: [{ key: "team", value: "data" }] })),
    );
    const taskArn = await runOne(
      ecs,
      runInput("tern-etl", {
        startedBy: "tern-run-42",
        tags: [{ key: "tern:run", value: "42" }],
        propagateTags: "TASK_DEFINITION",
        overrides: { containerOverrides: [{ name: "runner", command: ["tern", "execute", "42"] }] },
      }),
    );
    await fake.waitForTask(taskArn, "RUNNING");
    const running = await describeOne(ecs, taskArn);
    expect(running).toMatchObject({
      taskDefinitionArn: "arn:aws:ecs:us-east-1:123456789012:task-definition/tern-etl:1",
      clusterArn: "arn:aws:ecs:us-east-1:123456789012:cluster/default",
      lastStatus: "RUNNING",
      desiredStatus: "RUNNING",
      startedBy: "tern-run-42",
      group: "family:tern-etl",
      launchType: "FARGATE",
      overrides: { containerOverrides: [{ name: "runner", command: ["tern", "execute", "42"] }] },
      containers: [{ name: "runner", image: IMAGE, lastStatus: "RUNNING" }],
    });
    expect(running.tags).toEqual(
      expect.arrayContaining([
        { key: "team", value: "data" },
        { key: "tern:run", value: "42" },
      ]),
    );
    // Epoch seconds on the wire: parsed in milliseconds, the SDK would land tens of millennia away.
    expect(running.createdAt?.getFullYear()).toBe(new Date().getFullYear());
    expect(running.startedAt).toBeInstanceOf(Date);

    const missing = await ecs.send(new DescribeTasksCommand({ tasks: ["0123456789abcdef0123456789abcdef"] }));
    expect(missing.failures).toEqual([
      {
        arn: "arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef0123456789abcdef",
        reason: "MISSING",
      },
    ]);
    expect((await ecs.send(new ListTasksCommand({ startedBy: "tern-run-42" }))).taskArns).toEqual([taskArn]);

    fake.finishTask(taskArn, 0);
    const stopped = await fake.waitForTask(taskArn, "STOPPED");
    expect(stopped).toMatchObject({ stopCode: "EssentialContainerExited", containers: [{ exitCode: 0 }] });
    expect((await ecs.send(new ListTasksCommand({ startedBy: "tern-run-42" }))).taskArns).toEqual([]);
    expect((await ecs.send(new ListTasksCommand({ desiredStatus: "STOPPED" }))).taskArns).toEqual([taskArn]);
  });
});

describe("FakeEcs task lifecycle with local processes", () => {
  it("runs the command through the runner with the merged environment, captures output and reports the exit code", async () => {
    const { fake, ecs } = await start({ runner: { command: [process.execPath], env: { FROM_RUNNER: "r" } } });
    const script = [
      "const { FROM_RUNNER, FROM_DEFINITION, FROM_OVERRIDE, NODE_OPTIONS = 'none' } = process.env;",
      "console.log([FROM_RUNNER, FROM_DEFINITION, FROM_OVERRIDE, NODE_OPTIONS].join(' '));",
      "console.error('to stderr');",
      "process.exit(3);",
    ].join("");
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern", "-e", script])));
    // The test runner's NODE_OPTIONS must not leak into the task's process.
    const previous = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = "--no-deprecation";
    let taskArn: string;
    try {
      taskArn = await runOne(
        ecs,
        runInput("tern-etl", {
          overrides: { containerOverrides: [{ name: "runner", environment: [{ name: "FROM_OVERRIDE", value: "o" }] }] },
        }),
      );
      await fake.waitForTask(taskArn, "STOPPED");
    } finally {
      if (previous === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = previous;
    }
    const task = await describeOne(ecs, taskArn);
    expect(task).toMatchObject(exitedTask([{ name: "runner", lastStatus: "STOPPED", exitCode: 3 }]));
    expect(task.stoppedAt).toBeInstanceOf(Date);
    expect(fake.output(taskArn, "stdout")).toBe("r d o none\n");
    expect(fake.output(taskArn)).toContain("to stderr");
    expect(fake.task(taskArn)?.command?.[0]).toBe(process.execPath);
  });

  it("keeps what an awslogs container printed in its stream, line by line, as GetLogEvents reads it", async () => {
    const { fake, ecs } = await start();
    const logs = new CloudWatchLogsClient({ endpoint: fake.endpoint, region: REGION, credentials: CREDENTIALS });
    const program = "console.log('one'); console.error('two'); process.stdout.write('three\\nfour'); process.exit(1);";
    const awslogs = {
      logDriver: "awslogs" as const,
      options: { "awslogs-group": "/tern/runs", "awslogs-region": REGION, "awslogs-stream-prefix": "tern" },
    };
    const input = definition("tern-logs", ["node", "-e", program]);
    const [container] = input.containerDefinitions ?? [];
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        ...input,
        containerDefinitions: [{ ...container, logConfiguration: awslogs }],
      }),
    );
    const taskArn = await runOne(ecs, runInput("tern-logs"));
    await fake.waitForTask(taskArn, "STOPPED");
    const stream = `tern/runner/${taskArn.slice(taskArn.lastIndexOf("/") + 1)}`;
    const read = (extra: object = {}) =>
      logs.send(new GetLogEventsCommand({ logGroupName: "/tern/runs", logStreamName: stream, ...extra }));
    const all = await read();
    expect(all.events?.map((e) => e.message).sort()).toEqual(["four", "one", "three", "two"]);
    expect(all.events?.every((e) => e.timestamp !== undefined && e.timestamp <= Date.now())).toBe(true);
    // The last events unless startFromHead, in the order they arrived either way.
    expect((await read({ limit: 1 })).events?.map((e) => e.message)).toEqual([all.events?.at(-1)?.message]);
    expect((await read({ limit: 1, startFromHead: true })).events?.map((e) => e.message)).toEqual([
      all.events?.[0]?.message,
    ]);
    await expect(read({ limit: 10_001 })).rejects.toMatchObject({ name: "InvalidParameterException" });
    await expect(read({ logStreamName: "tern/runner/0000" })).rejects.toMatchObject({
      name: "ResourceNotFoundException",
      message: "The specified log stream does not exist.",
    });
    logs.destroy();
  });

  it("runs a command that starts with node with this process's Node, as a stock Node image would", async () => {
    // No runner: a "node" command needs none, as on ECS with a node image.
    const { fake, ecs } = await start();
    const program = "console.log(process.env.FROM_DEFINITION + process.env.FROM_OVERRIDE); process.exit(70);";
    await ecs.send(
      new RegisterTaskDefinitionCommand(definition("tern-node", ["node", "--input-type=module", "-e", program])),
    );
    const taskArn = await runOne(
      ecs,
      runInput("tern-node", {
        overrides: { containerOverrides: [{ name: "runner", environment: [{ name: "FROM_OVERRIDE", value: "o" }] }] },
      }),
    );
    await fake.waitForTask(taskArn, "STOPPED");
    expect(fake.task(taskArn)?.command).toEqual([process.execPath, "--input-type=module", "-e", program]);
    expect(fake.output(taskArn, "stdout")).toBe("do\n");
    expect(await describeOne(ecs, taskArn)).toMatchObject(exitedTask([{ name: "runner", exitCode: 70 }]));
  });

  it("stops a task with SIGTERM, then SIGKILL after the stop timeout, as UserInitiated with the reason", async () => {
    const { fake, ecs } = await start({ runner: { command: [process.execPath] }, stopTimeoutMs: 300 });
    const sleeper = "console.log('ready'); setInterval(() => {}, 1000);";
    const stubborn = "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);";
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-sleep", ["tern", "-e", sleeper])));
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-stubborn", ["tern", "-e", stubborn])));
    const polite = await runOne(ecs, runInput("tern-sleep"));
    const deaf = await runOne(ecs, runInput("tern-stubborn"));
    await Promise.all([waitForOutput(fake, polite, "ready"), waitForOutput(fake, deaf, "ready")]);

    const { task } = await ecs.send(new StopTaskCommand({ task: polite, reason: "Cancelled by tern" }));
    expect(task).toMatchObject({ desiredStatus: "STOPPED", stopCode: "UserInitiated" });
    await ecs.send(new StopTaskCommand({ task: deaf }));

    await fake.waitForTask(polite, "STOPPED");
    await fake.waitForTask(deaf, "STOPPED");
    expect(await describeOne(ecs, polite)).toMatchObject({
      stopCode: "UserInitiated",
      stoppedReason: "Cancelled by tern",
      containers: [{ exitCode: 143 }],
    });
    expect(await describeOne(ecs, deaf)).toMatchObject({
      stopCode: "UserInitiated",
      stoppedReason: ECS_MESSAGES.stoppedByUser,
      containers: [{ exitCode: 137 }],
    });
  });

  it("fails a task whose image cannot be pulled before starting any process", async () => {
    const { fake, ecs } = await start({
      runner: { command: [process.execPath] },
      pullableImages: (image) => image !== "tern/missing:1",
    });
    const family = definition("tern-missing", ["tern", "-e", "console.log('ran')"]);
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        ...family,
        containerDefinitions: [
          { name: "runner", image: "tern/missing:1", command: ["tern", "-e", "console.log('ran')"] },
        ],
      }),
    );
    const taskArn = await runOne(ecs, runInput("tern-missing"));
    await fake.waitForTask(taskArn, "STOPPED");
    const reason =
      "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/tern/missing:1: not found";
    const task = await describeOne(ecs, taskArn);
    expect(task).toMatchObject({
      stopCode: "TaskFailedToStart",
      stoppedReason: reason,
      containers: [{ name: "runner", lastStatus: "STOPPED", reason }],
    });
    expect(task.containers?.[0]?.exitCode).toBeUndefined();
    expect(task.startedAt).toBeUndefined();
    expect(fake.output(taskArn)).toBe("");
  });

  it("ends launches as injected: an OOM kill with 137, and an ENI timeout before starting", async () => {
    const { fake, ecs } = await start({ runner: { command: [process.execPath] } });
    await ecs.send(
      new RegisterTaskDefinitionCommand(definition("tern-sleep", ["tern", "-e", "setInterval(() => {}, 1000)"])),
    );
    fake.injectLaunchOutcomes([
      { kind: "oom", afterMs: 100 },
      { kind: "fail-to-start", stoppedReason: ECS_MESSAGES.networkInterfaceTimeout },
    ]);
    const oom = await runOne(ecs, runInput("tern-sleep"));
    const eni = await runOne(ecs, runInput("tern-sleep"));
    await fake.waitForTask(oom, "STOPPED");
    await fake.waitForTask(eni, "STOPPED");
    expect(await describeOne(ecs, oom)).toMatchObject(
      exitedTask([{ exitCode: 137, reason: "OutOfMemoryError: Container killed due to memory usage" }]),
    );
    const failed = await describeOne(ecs, eni);
    expect(failed).toMatchObject({
      stopCode: "TaskFailedToStart",
      stoppedReason: "Timeout waiting for network interface provisioning to complete.",
    });
    expect(failed.containers?.[0]?.exitCode).toBeUndefined();
  });

  it("kills its running children on close", async () => {
    const { fake, ecs } = await start({ runner: { command: [process.execPath] } });
    const script = "console.log('pid=' + process.pid); setInterval(() => {}, 1000);";
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-sleep", ["tern", "-e", script])));
    const taskArn = await runOne(ecs, runInput("tern-sleep"));
    await waitForOutput(fake, taskArn, "pid=");
    const pid = Number(/pid=(\d+)/.exec(fake.output(taskArn))?.[1]);
    expect(() => process.kill(pid, 0)).not.toThrow();
    await fake.close();
    await fake.close();
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: "ESRCH" }));
  });
});

describe("FakeEcs protocol", () => {
  it("is reached through AWS_ENDPOINT_URL_ECS by a client built without an endpoint", async () => {
    const { fake } = await start();
    const previous = process.env.AWS_ENDPOINT_URL_ECS;
    process.env.AWS_ENDPOINT_URL_ECS = fake.endpoint;
    try {
      const ecs = new ECSClient({ region: REGION, credentials: CREDENTIALS });
      clients.push(ecs);
      const listed = await ecs.send(new ListTaskDefinitionsCommand({}));
      expect(listed.taskDefinitionArns).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_ECS;
      else process.env.AWS_ENDPOINT_URL_ECS = previous;
    }
    expect(fake.calls.ListTaskDefinitions).toBe(1);
    expect(fake.callLog).toEqual([expect.objectContaining({ operation: "ListTaskDefinitions", input: {} })]);
  });

  it("answers an operation it does not implement with UnknownOperationException", async () => {
    const { fake } = await start();
    const response = await fetch(`${fake.endpoint}/`, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AmazonEC2ContainerServiceV20141113.DescribeClusters",
      },
      body: "{}",
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ __type: "UnknownOperationException" });
  });
});

describe("FakeEcs as strict as ECS", () => {
  it("remembers a clientToken per cluster for 24 hours of its clock, and answers a reuse with other parameters with ConflictException", async () => {
    const clock = new ManualClock();
    const { fake, ecs } = await start({ launch: "none", clusters: ["other"], clock });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    const input = runInput("tern-etl", { clientToken: "tok-1" });
    const first = await runOne(ecs, input);
    clock.advance(CLIENT_TOKEN_TTL_MS - 1);
    expect(await runOne(ecs, input)).toBe(first);
    await expect(ecs.send(new RunTaskCommand({ ...input, startedBy: "another" }))).rejects.toMatchObject({
      name: "ConflictException",
      resourceIds: [first],
      $metadata: { httpStatusCode: 400 },
    });
    // The same token in another cluster is another launch.
    const elsewhere = await runOne(ecs, { ...input, cluster: "other" });
    expect(elsewhere).not.toBe(first);
    // After 24 hours the token is forgotten: a new task.
    clock.advance(1);
    const later = await runOne(ecs, input);
    expect(later).not.toBe(first);
    expect(fake.launchedTasks).toHaveLength(3);
  });

  it("refuses a capacity provider that is not associated with the cluster, as ECS does", async () => {
    const { fake, ecs } = await start({ launch: "none", clusters: ["bare"], capacityProviders: { bare: [] } });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    const spot = runInput("tern-etl", {
      cluster: "bare",
      launchType: undefined,
      capacityProviderStrategy: [{ capacityProvider: "FARGATE_SPOT", weight: 1 }],
    });
    await expect(ecs.send(new RunTaskCommand(spot))).rejects.toMatchObject({
      name: "InvalidParameterException",
      message: ECS_MESSAGES.capacityProviderNotAssociated,
    });
    // The default cluster has FARGATE and FARGATE_SPOT associated (as the stack creates it).
    await runOne(ecs, { ...spot, cluster: "default" });
    fake.setCapacityProviders("bare", ["FARGATE_SPOT"]);
    const task = await runOne(ecs, spot);
    expect(fake.task(task)?.capacityProviderName).toBe("FARGATE_SPOT");
  });

  it("throttles nothing by default", async () => {
    const { fake, ecs } = await start({ launch: "none", startDelayMs: 0 }, { maxAttempts: 1 });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    for (let i = 0; i < 120; i++) await runOne(ecs, runInput("tern-etl"));
    expect(fake.throttled).toEqual({ runTask: 0, fargateLaunches: 0, registerTaskDefinition: 0 });
  });

  it("throttles with ECS's buckets on its clock when switched on: ThrottlingException, HTTP 400, 'Rate exceeded'", async () => {
    const clock = new ManualClock();
    const { fake, ecs } = await start({ launch: "none", startDelayMs: 0, clock }, { maxAttempts: 1 });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    fake.setThrottling(true);
    const throttled = { name: "ThrottlingException", message: RATE_EXCEEDED, $metadata: { httpStatusCode: 400 } };
    // RegisterTaskDefinition: about one per second.
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    await expect(ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])))).rejects.toMatchObject(
      throttled,
    );
    clock.advance(1000);
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    // RunTask and Fargate launches: a burst of 100...
    for (let i = 0; i < 100; i++) await runOne(ecs, runInput("tern-etl"));
    await expect(ecs.send(new RunTaskCommand(runInput("tern-etl")))).rejects.toMatchObject(throttled);
    // ...then Fargate's 20 launches per second (RunTask's own bucket refills at 40).
    clock.advance(1000);
    for (let i = 0; i < 20; i++) await runOne(ecs, runInput("tern-etl"));
    await expect(ecs.send(new RunTaskCommand(runInput("tern-etl")))).rejects.toMatchObject(throttled);
    expect(fake.launchedTasks).toHaveLength(120);
    // The 101st call found RunTask's own bucket empty too; the 121st only Fargate's.
    expect(fake.throttled).toEqual({ runTask: 1, fargateLaunches: 1, registerTaskDefinition: 1 });
    // RunTask's own bucket: 40 per second, whatever the launches.
    fake.setThrottling({ fargateLaunches: false });
    for (let i = 0; i < 100; i++) await runOne(ecs, runInput("tern-etl"));
    await expect(ecs.send(new RunTaskCommand(runInput("tern-etl")))).rejects.toMatchObject(throttled);
    clock.advance(1000);
    for (let i = 0; i < 40; i++) await runOne(ecs, runInput("tern-etl"));
    await expect(ecs.send(new RunTaskCommand(runInput("tern-etl")))).rejects.toMatchObject(throttled);
    fake.setThrottling(false);
    await runOne(ecs, runInput("tern-etl"));
  });

  it("refuses launches past the account's vCPU quota, as a failures entry or as an error", async () => {
    const { fake, ecs } = await start({ launch: "none", startDelayMs: 0, vcpuQuota: 0.5 });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    const first = await runOne(ecs, runInput("tern-etl"));
    await runOne(ecs, runInput("tern-etl"));
    const refused = await ecs.send(new RunTaskCommand(runInput("tern-etl")));
    expect(refused.tasks).toEqual([]);
    expect(refused.failures).toEqual([{ reason: ECS_MESSAGES.vcpuLimit }]);
    fake.setVcpuQuota({ vcpus: 0.5, answer: "error" });
    await expect(ecs.send(new RunTaskCommand(runInput("tern-etl")))).rejects.toMatchObject({
      name: "ClientException",
      message: ECS_MESSAGES.vcpuLimit,
    });
    // A stopped task gives its vCPUs back.
    await fake.waitForTask(first, "RUNNING");
    fake.finishTask(first, 0);
    await fake.waitForTask(first, "STOPPED");
    await runOne(ecs, runInput("tern-etl"));
  });

  it("produces every TaskStopCode", async () => {
    const { fake, ecs } = await start({ launch: "none", startDelayMs: 0 });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    const seen: Record<string, string | undefined> = {};
    const stopped = async (arn: string) => {
      await fake.waitForTask(arn, "STOPPED");
      const task = await describeOne(ecs, arn);
      seen[task.stopCode ?? "none"] = task.stoppedReason;
    };
    const codes: StopCodeInjection[] = [
      "SpotInterruption",
      "TerminationNotice",
      "ServiceSchedulerInitiated",
      "InfrastructureHealth",
      "UserInitiated",
    ];
    for (const code of codes) {
      const arn = await runOne(ecs, runInput("tern-etl"));
      await fake.waitForTask(arn, "RUNNING");
      fake.stopTaskWith(arn, code);
      await stopped(arn);
    }
    const exited = await runOne(ecs, runInput("tern-etl"));
    await fake.waitForTask(exited, "RUNNING");
    fake.finishTask(exited, 3);
    await stopped(exited);
    // TaskFailedToStart: stopped before it runs.
    const slow = await start({ launch: "none", startDelayMs: 400 });
    await slow.ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    const pending = await runOne(slow.ecs, runInput("tern-etl"));
    expect(() => fake.stopTaskWith(exited, "SpotInterruption")).toThrow(/already stopped/);
    expect(slow.fake.task(pending)?.lastStatus).toBe("PROVISIONING");
    slow.fake.stopTaskWith(pending, "TaskFailedToStart");
    await slow.fake.waitForTask(pending, "STOPPED");
    const failed = await describeOne(slow.ecs, pending);
    seen[failed.stopCode ?? "none"] = failed.stoppedReason;
    expect(Object.keys(seen).sort()).toEqual([
      "EssentialContainerExited",
      "InfrastructureHealth",
      "ServiceSchedulerInitiated",
      "SpotInterruption",
      "TaskFailedToStart",
      "TerminationNotice",
      "UserInitiated",
    ]);
    expect(seen.SpotInterruption).toBe(ECS_MESSAGES.stopReasons.SpotInterruption);
    expect(seen.EssentialContainerExited).toBe(ECS_MESSAGES.essentialContainerExited);
  });

  it("forgets a stopped task after about an hour of its clock: DescribeTasks answers MISSING, ListTasks leaves it out", async () => {
    const clock = new ManualClock();
    const { fake, ecs } = await start({ launch: "none", startDelayMs: 0, clock });
    await ecs.send(new RegisterTaskDefinitionCommand(definition("tern-etl", ["tern"])));
    const arn = await runOne(ecs, runInput("tern-etl"));
    await fake.waitForTask(arn, "RUNNING");
    await ecs.send(new StopTaskCommand({ cluster: "default", task: arn }));
    await fake.waitForTask(arn, "STOPPED");
    clock.advance(59 * 60 * 1000);
    expect((await describeOne(ecs, arn)).lastStatus).toBe("STOPPED");
    const listed = await ecs.send(new ListTasksCommand({ cluster: "default", desiredStatus: "STOPPED" }));
    expect(listed.taskArns).toEqual([arn]);
    clock.advance(60 * 1000);
    const described = await ecs.send(new DescribeTasksCommand({ cluster: "default", tasks: [arn] }));
    expect(described.tasks).toEqual([]);
    expect(described.failures).toEqual([{ arn, reason: "MISSING" }]);
    const after = await ecs.send(new ListTasksCommand({ cluster: "default", desiredStatus: "STOPPED" }));
    expect(after.taskArns).toEqual([]);
    // The test's own view still has it.
    expect(fake.task(arn)?.lastStatus).toBe("STOPPED");
  });
});
