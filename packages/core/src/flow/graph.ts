import { describe } from "../describe.js";
import { FlowCycleError, FlowDefinitionError } from "../errors.js";
import {
  isRef,
  isUnmapped,
  makeRef,
  type ParameterDeclaration,
  type Ref,
  type RefGraph,
  refTarget,
  unwrapUnmapped,
} from "./ref.js";
import { type AnyTask, isTask } from "./task-types.js";

/** How one argument of a task call is obtained at run time, and whether a map call fans out over it. */
export type ArgSpec = { readonly mapped: boolean } & (
  | { readonly kind: "value"; readonly value: unknown }
  | { readonly kind: "task"; readonly node: number }
  | { readonly kind: "parameter"; readonly name: string }
);

/** One use of a task in a flow. */
export interface GraphNode {
  readonly index: number;
  readonly task: AnyTask;
  /** Unique in the flow: the task's name, then `name-2`, `name-3` for further uses. */
  readonly slug: string;
  args: readonly ArgSpec[];
  /** Whether this node fans out over its `mapped` arguments. */
  mapped: boolean;
  /** Whether arguments were given (by a call or `flow.bind`). */
  bound: boolean;
  /** Nodes that must finish first: data dependencies and `setUpstream` edges. */
  readonly upstream: number[];
  readonly downstream: number[];
}

/** The graph of one flow: nodes in definition order and declared parameters. */
export class FlowGraph {
  readonly nodes: GraphNode[] = [];
  readonly parameters = new Map<string, ParameterDeclaration>();
  private readonly slugUses = new Map<string, number>();
  private readonly slugs = new Set<string>();

  constructor(readonly flowName: string) {}

  /** Adds a node for a task call made in the build function and returns its reference. */
  callTask(task: AnyTask, args: readonly unknown[], mapped: boolean): Ref<unknown> {
    const node = this.addNode(task);
    this.setArgs(node, args, mapped, false);
    return this.refOf(node);
  }

  /** Adds a node for `task`, with no arguments yet. */
  addNode(task: AnyTask): GraphNode {
    const slug = this.nextSlug(task.taskName);
    const node: GraphNode = {
      index: this.nodes.length,
      task,
      slug,
      args: [],
      mapped: false,
      bound: false,
      upstream: [],
      downstream: [],
    };
    this.nodes.push(node);
    return node;
  }

  /** A reference to a node's result. */
  refOf(node: GraphNode): Ref<unknown> {
    return makeRef({ kind: "task", graph: this, node: node.index });
  }

  /**
   * Gives a node its arguments and adds the data edges they imply. `tasksAsRefs` lets the
   * imperative `flow.bind` pass a task to mean its single node in this flow.
   */
  setArgs(node: GraphNode, args: readonly unknown[], mapped: boolean, tasksAsRefs: boolean): void {
    if (node.bound) {
      throw new FlowDefinitionError(
        `Flow "${this.flowName}": task "${node.slug}" already has its arguments; a task use is bound once. ` +
          "Call the task again for another use.",
      );
    }
    const specs = args.map((arg, i) => this.toArg(node, arg, i + 1, mapped, tasksAsRefs));
    if (mapped && specs.length > 0 && specs.every((s) => !s.mapped)) {
      throw new FlowDefinitionError(
        `Flow "${this.flowName}": ${node.slug}.map(...) has only unmapped() arguments; give at least one list to map over.`,
      );
    }
    if (mapped && specs.length === 0) {
      throw new FlowDefinitionError(`Flow "${this.flowName}": ${node.slug}.map() needs at least one list to map over.`);
    }
    node.args = specs;
    node.mapped = mapped;
    node.bound = true;
  }

  /** Declares a parameter; declaring another parameter under a taken name is an error. */
  declareParameter(declaration: ParameterDeclaration): void {
    const existing = this.parameters.get(declaration.name);
    if (existing === undefined) {
      this.parameters.set(declaration.name, declaration);
    } else if (existing !== declaration) {
      throw new FlowDefinitionError(
        `Flow "${this.flowName}": parameter "${declaration.name}" is declared twice. ` +
          "Declare it once and pass that reference to every task that needs it.",
      );
    }
  }

  /** The node a task or reference stands for in this flow; a task not yet used is added. */
  resolveTarget(target: unknown, what: string): GraphNode {
    if (isRef(target)) {
      const t = refTarget(target);
      if (t.kind !== "task") {
        throw new FlowDefinitionError(
          `Flow "${this.flowName}": ${what} must be a task or a task's result, got parameter "${t.name}".`,
        );
      }
      if (t.graph !== this) {
        throw this.foreignRef(t.graph, t.node, what);
      }
      return this.nodes[t.node] as GraphNode;
    }
    if (isTask(target)) {
      const uses = this.nodes.filter((n) => n.task === target);
      if (uses.length === 1) return uses[0] as GraphNode;
      if (uses.length === 0) return this.addNode(target);
      throw new FlowDefinitionError(
        `Flow "${this.flowName}": task "${target.taskName}" is used ${uses.length} times (${uses.map((n) => n.slug).join(", ")}), ` +
          `so ${what} is ambiguous. Pass the reference returned by the call you mean.`,
      );
    }
    throw new FlowDefinitionError(
      `Flow "${this.flowName}": ${what} must be a task or a task's result, got ${describe(target)}.`,
    );
  }

  /** Adds the edge `from -> to`, refusing one that closes a cycle. */
  addEdge(from: GraphNode, to: GraphNode): void {
    if (to.upstream.includes(from.index)) return;
    const path = this.pathBetween(to, from);
    if (path !== undefined) {
      throw new FlowCycleError(this.flowName, [from.slug, ...path.map((n) => n.slug)]);
    }
    to.upstream.push(from.index);
    from.downstream.push(to.index);
  }

  /** Nodes that no other node depends on. */
  terminalNodes(): GraphNode[] {
    return this.nodes.filter((n) => n.downstream.length === 0);
  }

  private toArg(node: GraphNode, arg: unknown, position: number, mapMode: boolean, tasksAsRefs: boolean): ArgSpec {
    let value = arg;
    let mapped = mapMode;
    const where = `argument ${position} of ${node.slug}${mapMode ? ".map" : ""}(...)`;
    if (isUnmapped(value)) {
      if (!mapMode) {
        throw new FlowDefinitionError(
          `Flow "${this.flowName}": ${where} is wrapped in unmapped(), which only applies to task.map(...). Pass the value itself.`,
        );
      }
      value = unwrapUnmapped(value);
      mapped = false;
    }
    if (tasksAsRefs && isTask(value)) {
      value = this.refOf(this.resolveTarget(value, where));
    }
    if (isRef(value)) {
      const target = refTarget(value);
      if (target.kind === "parameter") {
        this.declareParameter(target.declaration);
        return { kind: "parameter", name: target.name, mapped };
      }
      if (target.graph !== this) throw this.foreignRef(target.graph, target.node, where);
      this.addEdge(this.nodes[target.node] as GraphNode, node);
      return { kind: "task", node: target.node, mapped };
    }
    if (isTask(value)) {
      throw new FlowDefinitionError(
        `Flow "${this.flowName}": ${where} is the task "${value.taskName}" itself. ` +
          `Pass its result instead: call it (${value.taskName}(...)) and pass what the call returns.`,
      );
    }
    if (containsRef(value, 0)) {
      throw new FlowDefinitionError(
        `Flow "${this.flowName}": ${where} holds a reference inside an array or object; references are resolved only ` +
          "as direct arguments. Pass each reference as its own argument, or gather them with a task.",
      );
    }
    if (mapped && !Array.isArray(value)) {
      throw new FlowDefinitionError(
        `Flow "${this.flowName}": ${where} must be a list to map over, got ${describe(value)}. ` +
          "Wrap values every child shares in unmapped(...).",
      );
    }
    return { kind: "value", value, mapped };
  }

  private foreignRef(other: RefGraph, index: number, where: string): FlowDefinitionError {
    const slug = other.nodes[index]?.slug ?? "?";
    return new FlowDefinitionError(
      `Flow "${this.flowName}": ${where} refers to task "${slug}" of flow "${other.flowName}". ` +
        `A reference belongs to the flow it was made in; call the task inside "${this.flowName}" instead.`,
    );
  }

  /** A path `from -> ... -> to` along downstream edges, or undefined. */
  private pathBetween(from: GraphNode, to: GraphNode): GraphNode[] | undefined {
    if (from === to) return [from];
    const parent = new Map<number, number>([[from.index, -1]]);
    const queue = [from.index];
    for (let head = 0; head < queue.length; head++) {
      const current = queue[head] as number;
      for (const next of (this.nodes[current] as GraphNode).downstream) {
        if (parent.has(next)) continue;
        parent.set(next, current);
        if (next === to.index) {
          const path: GraphNode[] = [];
          for (let at = next; at !== -1; at = parent.get(at) as number) path.unshift(this.nodes[at] as GraphNode);
          return path;
        }
        queue.push(next);
      }
    }
    return undefined;
  }

  private nextSlug(name: string): string {
    let uses = this.slugUses.get(name) ?? 0;
    let slug: string;
    do {
      uses += 1;
      slug = uses === 1 ? name : `${name}-${uses}`;
    } while (this.slugs.has(slug));
    this.slugUses.set(name, uses);
    this.slugs.add(slug);
    return slug;
  }
}

function containsRef(value: unknown, depth: number): boolean {
  if (depth > 8) return false;
  if (isRef(value) || isTask(value)) return true;
  if (typeof value !== "object" || value === null) return false;
  if (Array.isArray(value)) return value.some((v) => containsRef(v, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).some((v) => containsRef(v, depth + 1));
}

const building: FlowGraph[] = [];

/** Runs `build` with `graph` as the flow that task calls and parameters attach to. */
export function withGraph<T>(graph: FlowGraph, build: () => T): T {
  building.push(graph);
  try {
    return build();
  } finally {
    building.pop();
  }
}

/** The flow whose build function is running, if any. */
export function buildingGraph(): FlowGraph | undefined {
  return building[building.length - 1];
}

/** The flow whose build function is running; a task called outside one is an error. */
export function currentGraph(taskName: string): FlowGraph {
  const graph = buildingGraph();
  if (graph === undefined) {
    throw new FlowDefinitionError(
      `Task "${taskName}" was called outside a flow's build function. Call it inside ` +
        `new Flow(name, options, () => { ... }), or wire it with flow.bind(${taskName}, ...args).`,
    );
  }
  return graph;
}
