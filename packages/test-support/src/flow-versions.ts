/**
 * A flow version registered straight into a backend, for tests that need runs of a flow but not
 * the flow itself: flow "etl" of project "p", stored locally, unless `fields` say otherwise.
 */
import type { Backend, FlowVersionInput, FlowVersionRecord } from "@tern/core/plugin";

export async function registerTestFlow(
  backend: Pick<Backend, "registerFlowVersion">,
  fields: Partial<FlowVersionInput> = {},
): Promise<FlowVersionRecord> {
  const { version } = await backend.registerFlowVersion({
    project: "p",
    flow: "etl",
    labels: [],
    storage: { type: "local", options: {} },
    location: "m.json",
    manifestHash: "h",
    environmentType: "local",
    ...fields,
  });
  return version;
}
