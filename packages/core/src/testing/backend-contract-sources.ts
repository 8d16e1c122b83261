import { describe, expect, it } from "vitest";
import type { FlowSource } from "../backend/types.js";
import type { ContractContext } from "./backend-contract-context.js";
import { manifestHash } from "./backend-contract-runs.js";

const CLEAN: FlowSource = {
  repository: "https://github.com/acme/flows.git",
  commit: "1".repeat(40),
  path: "flows/etl.ts",
  dirty: false,
};

/** The Git source recorded on flow versions. Part of `backendContract`. */
export function sourceContract(context: () => ContractContext): void {
  describe("flow version sources", () => {
    it("returns each version's source as registered, and none for a version registered without one", async () => {
      const { backend, version, project } = context();
      const dirty: FlowSource = { commit: "2".repeat(40), path: "etl.ts", dirty: true };
      const first = await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(1), source: CLEAN }));
      await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(2), source: dirty }));
      await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(3) }));
      expect(first.version.source).toEqual(CLEAN);
      expect((await backend.getFlowVersion(project, "etl", 1))?.source).toEqual(CLEAN);
      expect((await backend.getFlowVersion(project, "etl", 2))?.source).toEqual(dirty);
      expect(await backend.getFlowVersion(project, "etl", 3)).not.toHaveProperty("source");
    });

    it("keeps the version and its first source when the same manifest is registered from another commit", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(1), source: CLEAN }));
      const later = { ...CLEAN, commit: "3".repeat(40), dirty: true };
      const again = await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(1), source: later }));
      expect(again.status).toBe("unchanged");
      expect(again.version).toMatchObject({ version: 1, source: CLEAN });
      expect((await backend.getFlowVersion(project, "etl"))?.source).toEqual(CLEAN);
    });

    it("lists each flow with its newest version's source", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("a", { manifestHash: manifestHash(1) }));
      await backend.registerFlowVersion(version("a", { manifestHash: manifestHash(2), source: CLEAN }));
      await backend.registerFlowVersion(version("b", { manifestHash: manifestHash(1), source: CLEAN }));
      await backend.registerFlowVersion(version("b", { manifestHash: manifestHash(2) }));
      const flows = await backend.listFlows(project);
      expect(flows.map((f) => [f.flow, f.source])).toEqual([
        ["a", CLEAN],
        ["b", undefined],
      ]);
    });
  });
}
