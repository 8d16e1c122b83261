import type { Backend } from "../backend/types.js";
import { claimAndTransitionContract } from "./backend-contract-claims.js";
import type { ContractContext } from "./backend-contract-context.js";
import { flowAndRunContract } from "./backend-contract-runs.js";
import { scheduleContract } from "./backend-contract-schedules.js";
import { sourceContract } from "./backend-contract-sources.js";
import { type ContractOptions, contractSuite } from "./contract-suite.js";

export type { ContractContext } from "./backend-contract-context.js";

/** Options of {@link backendContract}. */
export type BackendContractOptions = ContractOptions;

/**
 * Declares the conformance suite every {@link Backend} implementation must pass, as a vitest
 * `describe` block. `open` is called before each test and must return a ready backend; the suite
 * closes it after the test. Each test works in its own random project, but claims and agents are
 * not scoped by project: give each test a fresh store (a new SQLite file, a new DynamoDB table),
 * or runs one test leaves Scheduled are claimed by the next.
 *
 * @example
 * import { backendContract } from "@tern/core/testing";
 *
 * backendContract("SqliteBackend", () => SqliteBackend.open({ path: join(tmp, `${randomUUID()}.db`) }));
 */
export function backendContract(
  name: string,
  open: () => Promise<Backend>,
  options: BackendContractOptions = {},
): void {
  const hooks = { open, close: (backend: Backend) => backend.close() };
  contractSuite(`Backend contract: ${name}`, options, hooks, (opened) => {
    const context = (): ContractContext => {
      const { subject: backend, scope: project } = opened();
      return {
        backend,
        project,
        version: (flow, overrides = {}) => ({
          project,
          flow,
          labels: [],
          storage: { type: "local", options: { directory: "/tmp/tern-contract" } },
          location: `flows/${flow}/manifest.json`,
          manifestHash: "a".repeat(64),
          environmentType: "local",
          ...overrides,
        }),
      };
    };

    flowAndRunContract(context);
    sourceContract(context);
    claimAndTransitionContract(context);
    scheduleContract(context);
  });
}
