import type { GraphRunResult } from "../runner/engine.js";
import type { Ref } from "./ref.js";

/** What a build function may return: named references that become the run's outputs. */
export type FlowOutputs = Record<string, Ref<unknown>>;

/** The values of a flow's outputs after a run; an output whose task did not succeed is undefined. */
export type OutputValues<O extends FlowOutputs> = { [K in keyof O]: O[K] extends Ref<infer T> ? T | undefined : never };

/** What `flow.run(...)` resolves to. */
export interface FlowRunResult<O extends FlowOutputs = FlowOutputs>
  extends Omit<GraphRunResult, "nodeResults" | "nodeStates"> {
  readonly outputs: OutputValues<O>;
}
