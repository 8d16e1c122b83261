import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { describe } from "../describe.js";
import { FlowDefinitionError } from "../errors.js";
import type { RegisterOptions, RegisterResult } from "../register.js";
import { GraphRunner, type RunOptions } from "../runner/engine.js";
import type { Executor } from "../runner/executor.js";
import { checkSchedules, type ScheduleInput, type ScheduleSpec } from "../schedule/definition.js";
import { checkScheduleParameters } from "../schedule/parameters.js";
import { isLoadingBundle } from "../storage/bundle.js";
import { FlowGraph, type GraphNode, withGraph } from "./graph.js";
import { checkParameterValues } from "./parameter-schema.js";
import { checkPlacement } from "./placement.js";
import { type Input, isRef, type ParameterDeclaration, type Ref, refTarget } from "./ref.js";
import type { FlowOutputs, FlowRunResult, OutputValues } from "./result.js";
import type { AnyTask, ResolvedTaskOptions, Task } from "./task-types.js";

/** Options of {@link Flow}. */
export interface FlowOptions {
  /**
   * How the flow's task runs are scheduled.
   * @default a LocalExecutor (one task at a time, deterministic order)
   */
  readonly executor?: Executor;
  /** Where registered runs of the flow execute. Kept with the flow for registration. */
  readonly environment?: object;
  /** Where the flow's code is stored when it is registered. Kept with the flow for registration. */
  readonly storage?: object;
  /** A sentence about what the flow does. */
  readonly description?: string;
  /**
   * The module that defines the flow, bundled at registration (`import.meta.url` or a path).
   * @default the file that called `new Flow`, read from the call stack
   */
  readonly module?: string | URL;
  /**
   * When agents start runs of the flow by themselves: `{ cron: "0 3 * * *", timezone:
   * "Europe/Berlin" }`, `{ every: "15m" }`, or a list of them. Checked here; part of the manifest.
   */
  readonly schedule?: ScheduleInput | readonly ScheduleInput[];
}

export type { FlowOutputs, FlowRunResult, OutputValues } from "./result.js";

const FLOW_BRAND = Symbol.for("tern.flow");
const CORE_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

/** The first file on the call stack outside tern's own sources. */
/**
 * Compiled flow files being imported, by path, and the user's files they were compiled from
 * (`importFlowFile`). A global symbol, so every copy of core sees the same map.
 */
const COMPILED_FILES = Symbol.for("tern.compiledFlowFiles");

function compiledFiles(): Map<string, string> {
  const global = globalThis as Record<symbol, Map<string, string> | undefined>;
  global[COMPILED_FILES] ??= new Map();
  return global[COMPILED_FILES];
}

/**
 * Runs `load` (the import of `compiled`) with flows defined in `compiled` taking `original` as
 * their source file: a file that builds its storage while it loads bundles the user's file.
 */
export async function withCompiledSource<T>(compiled: string, original: string, load: () => Promise<T>): Promise<T> {
  compiledFiles().set(compiled, original);
  try {
    return await load();
  } finally {
    compiledFiles().delete(compiled);
  }
}

function callerFile(): string | undefined {
  for (const name of stackFiles()) {
    const file = toPath(name);
    if (!file.startsWith(`${CORE_DIR}/`)) return compiledFiles().get(file) ?? file;
  }
  return undefined;
}

/**
 * The files on the call stack, innermost first. Inside a bundle being imported (a runner, a
 * registration's check) the caller is the bundle itself, and nothing reads a flow's source file
 * there (building and registering are refused): the frames are read as V8 gives them, because
 * formatting the stack with source maps on decodes the bundle's whole map (tens of ms per run).
 */
function stackFiles(): string[] {
  if (isLoadingBundle()) {
    const saved = Error.prepareStackTrace;
    Error.prepareStackTrace = (_error, frames) => frames.map((frame) => frame.getFileName() ?? "");
    try {
      return (new Error().stack as unknown as string[]).filter(
        (file) => file.startsWith("/") || file.startsWith("file:"),
      );
    } finally {
      Error.prepareStackTrace = saved;
    }
  }
  const files: string[] = [];
  for (const line of new Error().stack?.split("\n").slice(1) ?? []) {
    const match = /(file:\/\/\/[^\s)]+?|\/[^\s():]+?):\d+:\d+\)?\s*$/.exec(line);
    if (match !== null) files.push(match[1] as string);
  }
  return files;
}

function toPath(module: string | URL): string {
  const text = String(module);
  return text.startsWith("file:") ? fileURLToPath(text) : text;
}

/** A task use in a flow, as {@link Flow.tasks} describes it. */
export interface FlowTaskInfo {
  readonly slug: string;
  readonly task: string;
  readonly mapped: boolean;
  readonly options: ResolvedTaskOptions;
}

/** A dependency between two task uses: `from` must finish before `to` starts. */
export interface FlowEdgeInfo {
  readonly from: string;
  readonly to: string;
  /** `data` when `to` receives `from`'s result, `state` for a `setUpstream` edge. */
  readonly kind: "data" | "state";
}

/** An argument of `flow.bind(...)`: a value, a reference, or (imperatively) a task in this flow. */
// biome-ignore lint/suspicious/noExplicitAny: any task whose result has the right type.
export type BindInput<T> = Input<T> | Task<any[], T>;

/**
 * A flow: a DAG of typed tasks. `build` is called once, at construction; the task calls made in
 * it define the graph, and the object of references it returns names the run's outputs.
 *
 * @example
 * const flow = new Flow("etl", {}, () => {
 *   const data = extract();
 *   const transformed = transform(data);
 *   load(transformed);
 *   return { transformed };
 * });
 * const run = await flow.run();
 * run.outputs.transformed; // number[] | undefined
 */
export class Flow<O extends FlowOutputs = FlowOutputs> {
  readonly name: string;
  readonly executor: Executor | undefined;
  readonly description: string | undefined;
  /** The flow's schedules, checked (empty: runs start only when asked for). */
  readonly schedules: readonly ScheduleSpec[];
  /** The references the build function returned. */
  readonly outputRefs: O;
  /** The file that defines the flow (bundled at registration), when known. */
  readonly sourceFile: string | undefined;
  readonly #graph: FlowGraph;
  #referenceNodes: number[] | undefined;
  #environment: object | undefined;
  #storage: object | undefined;

  // biome-ignore lint/suspicious/noConfusingVoidType: a build function may return nothing at all.
  constructor(name: string, options: FlowOptions = {}, build?: () => O | undefined | void) {
    if (typeof name !== "string" || name.trim() === "") {
      throw new FlowDefinitionError(`new Flow(name): name must be a non-empty string, got ${describe(name)}.`);
    }
    if (typeof options !== "object" || options === null) {
      throw new FlowDefinitionError(
        `new Flow("${name}", options): options must be an object, got ${describe(options)}.`,
      );
    }
    const known = new Set(["executor", "environment", "storage", "description", "module", "schedule"]);
    for (const key of Object.keys(options)) {
      if (!known.has(key)) {
        throw new FlowDefinitionError(
          `new Flow("${name}", options): unknown option "${key}". Valid options: ${[...known].join(", ")}.`,
        );
      }
    }
    if (build !== undefined && typeof build !== "function") {
      throw new FlowDefinitionError(
        `new Flow("${name}", options, build): build must be a function, got ${describe(build)}.`,
      );
    }
    this.name = name;
    this.executor = options.executor;
    this.environment = options.environment;
    this.storage = options.storage;
    this.description = options.description;
    this.sourceFile = options.module === undefined ? callerFile() : toPath(options.module);
    Object.defineProperty(this, FLOW_BRAND, { value: true });
    this.#graph = new FlowGraph(name);
    const returned = build === undefined ? undefined : withGraph(this.#graph, build);
    this.outputRefs = this.#checkOutputs(returned ?? undefined);
    this.schedules = options.schedule === undefined ? [] : checkSchedules(name, options.schedule);
    for (const spec of this.schedules) checkScheduleParameters(name, spec, this.parameters);
  }

  /**
   * Where registered runs of the flow execute (an Environment; undefined: a LocalEnvironment).
   * Set with the `environment` option or by assignment before registering; checked either way.
   */
  get environment(): object | undefined {
    return this.#environment;
  }

  set environment(value: object | undefined) {
    this.#environment = checkPlacement("environment", value, this.name);
  }

  /**
   * Where the flow's code is stored when it is registered (a Storage; undefined: the default
   * storage). Set with the `storage` option or by assignment before registering; checked either way.
   */
  get storage(): object | undefined {
    return this.#storage;
  }

  set storage(value: object | undefined) {
    this.#storage = checkPlacement("storage", value, this.name);
  }

  /** The flow's task uses, in definition order. */
  get tasks(): readonly FlowTaskInfo[] {
    return this.#graph.nodes.map((n) => ({
      slug: n.slug,
      task: n.task.taskName,
      mapped: n.mapped,
      options: n.task.options,
    }));
  }

  /** The flow's dependencies. */
  get edges(): readonly FlowEdgeInfo[] {
    const edges: FlowEdgeInfo[] = [];
    for (const node of this.#graph.nodes) {
      const data = new Set(node.args.flatMap((a) => (a.kind === "task" ? [a.node] : [])));
      for (const u of node.upstream) {
        edges.push({ from: this.#slug(u), to: node.slug, kind: data.has(u) ? "data" : "state" });
      }
    }
    return edges;
  }

  /** The flow's declared parameters. */
  get parameters(): readonly ParameterDeclaration[] {
    return [...this.#graph.parameters.values()];
  }

  /** The slugs of the tasks whose states decide the flow run's state. */
  get referenceTasks(): readonly string[] {
    return this.#referenceIndexes().map((i) => this.#slug(i));
  }

  /**
   * Adds a task to the flow (imperative form) and returns a reference to its result. A task
   * already used once in the flow is returned as that use.
   */
  addTask<R>(target: Task<never[], R> | Task<[], R>): Ref<Awaited<R>> {
    return this.#graph.refOf(this.#graph.resolveTarget(target, "flow.addTask(task)")) as Ref<Awaited<R>>;
  }

  /**
   * Gives a task its arguments (imperative form), adding the task to the flow if needed. A task
   * passed as an argument stands for its result in this flow.
   *
   * @example
   * flow.bind(outputValue, getValue);
   */
  bind<A extends unknown[], R>(target: Task<A, R>, ...args: { [K in keyof A]: BindInput<A[K]> }): Ref<Awaited<R>> {
    const node = this.#graph.resolveTarget(target, "flow.bind(task, ...)");
    this.#graph.setArgs(node, args, false, true);
    return this.#graph.refOf(node) as Ref<Awaited<R>>;
  }

  /**
   * Makes `target` wait for `upstream` to finish (imperative form). Both may be tasks (their
   * single use in this flow, added if needed) or references. A dependency that would close a
   * cycle is refused with the cycle's path.
   */
  setUpstream(target: AnyTask | Ref<unknown>, upstream: AnyTask | Ref<unknown>): void {
    const to = this.#graph.resolveTarget(target, "flow.setUpstream(task, upstream): task");
    const from = this.#graph.resolveTarget(upstream, "flow.setUpstream(task, upstream): upstream");
    this.#graph.addEdge(from, to);
  }

  /**
   * Sets the tasks whose states decide the flow run's state.
   * @default the terminal tasks (those no other task depends on)
   */
  setReferenceTasks(...targets: Array<AnyTask | Ref<unknown>>): void {
    const nodes = targets.map((t, i) => this.#graph.resolveTarget(t, `flow.setReferenceTasks(...): argument ${i + 1}`));
    this.#referenceNodes = [...new Set(nodes.map((n) => n.index))];
  }

  /**
   * Registers the flow: builds it into its storage (the default storage, given `options`' extra
   * keys, when it has none), stores its manifest and records a version in the backend. An
   * unchanged flow records no version (`status: "unchanged"`).
   *
   * @example
   * await flow.register("My First Project", { labels: ["dev"] });
   */
  async register(project: string, options: RegisterOptions = {}): Promise<RegisterResult> {
    const { registerFlow } = await import("../register.js");
    return registerFlow(this, project, options);
  }

  /**
   * Runs the flow in this process. Rejects before running anything with a `ParameterValueError`
   * when a value does not fit its parameter's schema, and with a `ParameterError` when the
   * parameters do not match the declared ones (both code `PARAMETERS`); otherwise resolves with
   * the final state, the outputs and every task run.
   */
  async run(options: RunOptions = {}): Promise<FlowRunResult<O>> {
    checkParameterValues(this.name, this.parameters, options.parameters ?? {});
    const runner = new GraphRunner(this.#graph, this.#referenceIndexes(), this.executor, options);
    const { nodeResults, nodeStates, ...result } = await runner.run();
    const outputs: Record<string, unknown> = {};
    for (const [key, ref] of Object.entries(this.outputRefs)) {
      const target = refTarget(ref);
      if (target.kind === "parameter") outputs[key] = result.parameters[target.name];
      else outputs[key] = nodeStates[target.node] === "Success" ? nodeResults[target.node] : undefined;
    }
    return { ...result, outputs: outputs as OutputValues<O> };
  }

  #referenceIndexes(): number[] {
    return this.#referenceNodes ?? this.#graph.terminalNodes().map((n: GraphNode) => n.index);
  }

  #slug(index: number): string {
    return (this.#graph.nodes[index] as GraphNode).slug;
  }

  #checkOutputs(returned: unknown): O {
    if (returned === undefined) return {} as O;
    if (typeof returned !== "object" || returned === null || Array.isArray(returned)) {
      throw new FlowDefinitionError(
        `Flow "${this.name}": the build function must return an object of references (or nothing), got ${describe(returned)}.`,
      );
    }
    for (const [key, value] of Object.entries(returned)) {
      if (!isRef(value)) {
        throw new FlowDefinitionError(
          `Flow "${this.name}": output "${key}" is ${describe(value)}, not a reference. Return the result of a task call or a parameter.`,
        );
      }
      const target = refTarget(value);
      if (target.kind === "task" && target.graph !== this.#graph) {
        throw new FlowDefinitionError(
          `Flow "${this.name}": output "${key}" refers to a task of flow "${target.graph.flowName}". Return references made in this flow's build function.`,
        );
      }
    }
    return returned as O;
  }
}
