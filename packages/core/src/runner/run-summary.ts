/** How a finished flow run is described: its parameters checked, its failure summed up. */
import { ParameterError } from "../errors.js";
import type { FlowGraph } from "../flow/graph.js";
import { isFailed } from "./states.js";
import { safeString, type TaskRun } from "./task-run.js";

/** The run's parameter values: given ones, else defaults; unknown or missing ones throw. */
export function resolveParameters(graph: FlowGraph, given: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const declared = [...graph.parameters.keys()];
  const unknown = Object.keys(given).filter((name) => !graph.parameters.has(name));
  const missing = [...graph.parameters.values()]
    .filter((p) => p.required && given[p.name] === undefined && !p.hasDefault)
    .map((p) => p.name);
  if (unknown.length > 0 || missing.length > 0) throw new ParameterError(graph.flowName, unknown, missing, declared);
  const values: Record<string, unknown> = {};
  for (const p of graph.parameters.values()) {
    values[p.name] = given[p.name] !== undefined ? given[p.name] : p.default;
  }
  return values;
}

/** The message of a flow run whose reference tasks did not all succeed. */
export function failureSummary(taskRuns: readonly TaskRun[]): string {
  const failed = taskRuns.filter((t) => isFailed(t.state));
  if (failed.length === 0) return "The reference tasks did not succeed.";
  const shown = failed.slice(0, 10).map((t) => {
    const name = t.mapIndex === undefined ? t.slug : `${t.slug}[${t.mapIndex}]`;
    return `${name} (${t.state}${t.message ? `: ${t.message}` : ""})`;
  });
  const more = failed.length > 10 ? `; and ${failed.length - 10} more` : "";
  return `${failed.length} task run${failed.length > 1 ? "s" : ""} did not succeed: ${shown.join("; ")}${more}`;
}

/** A cancellation's reason as a message suffix (`: why`), empty for a plain abort. */
export function reasonText(reason: unknown): string {
  if (reason === undefined) return "";
  if (reason instanceof Error) return reason.name === "AbortError" ? "" : `: ${reason.message}`;
  return `: ${safeString(reason)}`;
}
