/** A schedule's parameters against the flow's: the runs it creates must be runs the flow takes. */
import { FlowDefinitionError } from "../errors.js";
import { checkParameterValues, ParameterValueError } from "../flow/parameter-schema.js";
import type { ParameterDeclaration } from "../flow/ref.js";
import type { ScheduleSpec } from "./definition.js";

/**
 * Refuses a schedule whose parameters name none of the flow's, leave out a required one, or hold
 * a value its schema refuses.
 */
export function checkScheduleParameters(
  flow: string,
  spec: ScheduleSpec,
  declared: readonly ParameterDeclaration[],
): void {
  const where = `new Flow("${flow}", { schedule }): schedule "${spec.name}"`;
  const given = spec.parameters ?? {};
  const names = new Set(declared.map((p) => p.name));
  for (const key of Object.keys(given)) {
    if (!names.has(key)) {
      throw new FlowDefinitionError(
        `${where} gives parameter "${key}", which the flow does not declare (${names.size === 0 ? "it has none" : `it has ${[...names].join(", ")}`}).`,
      );
    }
  }
  for (const p of declared) {
    if (p.required && !p.hasDefault && given[p.name] === undefined) {
      throw new FlowDefinitionError(
        `${where} leaves out parameter "${p.name}", which is required: give it in the schedule's parameters.`,
      );
    }
  }
  try {
    checkParameterValues(flow, declared, given);
  } catch (error) {
    if (!(error instanceof ParameterValueError)) throw error;
    throw new FlowDefinitionError(`${where}: ${error.message}`, { cause: error });
  }
}
