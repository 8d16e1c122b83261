import type { Backend, FlowVersionInput } from "../backend/types.js";

/** What every contract test gets: a fresh backend and a project name no other test uses. */
export interface ContractContext {
  readonly backend: Backend;
  readonly project: string;
  /** A flow version input in this test's project, with `overrides` applied. */
  version(flow: string, overrides?: Partial<FlowVersionInput>): FlowVersionInput;
}
