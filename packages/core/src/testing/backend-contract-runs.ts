import { describe, expect, it } from "vitest";
import { type LogPage, logPages, MAX_LOG_PAGE_SIZE, type RunLogRecord, type RunRecord } from "../backend/types.js";
import { NotFoundError, TernError } from "../errors.js";
import type { SerializedTaskRun } from "../runner/serialized.js";
import type { ContractContext } from "./backend-contract-context.js";

/** A manifest hash that differs for every `n`. */
export function manifestHash(n: number): string {
  return n.toString(16).padStart(64, "0");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Registers flow `etl` in the test's project and creates a run of it per name, in order. */
async function etlRuns<K extends string>(context: ContractContext, ...names: K[]): Promise<Record<K, RunRecord>> {
  const { backend, version, project } = context;
  await backend.registerFlowVersion(version("etl"));
  const runs = {} as Record<K, RunRecord>;
  for (const name of names) runs[name] = (await backend.createRun({ project, flow: "etl" })).run;
  return runs;
}

function taskRun(id: string, state: SerializedTaskRun["state"], attempts = 1): SerializedTaskRun {
  return { id, slug: id.split("/")[1] ?? id, task: "t", state, attempts, logs: [] };
}

/** Flow versions, run creation and listing, task runs, logs, agents. Part of `backendContract`. */
export function flowAndRunContract(context: () => ContractContext): void {
  describe("flow versions", () => {
    it("returns version 1 as new, the same version as unchanged, and version 2 for a changed manifest", async () => {
      const { backend, version } = context();
      const first = await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(1) }));
      const again = await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(1) }));
      const changed = await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(2) }));
      expect([first.status, again.status, changed.status]).toEqual(["new", "unchanged", "new"]);
      expect([first.version.version, again.version.version, changed.version.version]).toEqual([1, 1, 2]);
      expect(again.version).toEqual(first.version);
      expect(changed.version).toMatchObject({ ...version("etl", { manifestHash: manifestHash(2) }), version: 2 });
      expect(changed.version.createdAtMs).toBeGreaterThan(0);
    });

    it("numbers versions separately per flow and per project", async () => {
      const { backend, version } = context();
      await backend.registerFlowVersion(version("a", { manifestHash: manifestHash(1) }));
      await backend.registerFlowVersion(version("a", { manifestHash: manifestHash(2) }));
      const b = await backend.registerFlowVersion(version("b", { manifestHash: manifestHash(3) }));
      const other = await backend.registerFlowVersion(version("a", { project: `${context().project}-other` }));
      expect([b.version.version, other.version.version]).toEqual([1, 1]);
    });

    it("never gives two concurrent registrations the same version number", async () => {
      const { backend, version } = context();
      const results = await Promise.all(
        [1, 2, 3, 4, 5].map((n) => backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(n) }))),
      );
      expect(results.map((r) => r.version.version).sort()).toEqual([1, 2, 3, 4, 5]);
    });

    it("returns the newest version, a given version, and undefined for a missing flow or version", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(1), labels: ["v1"] }));
      await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(2), labels: ["v2"] }));
      expect(await backend.getFlowVersion(project, "etl")).toMatchObject({ version: 2, labels: ["v2"] });
      expect(await backend.getFlowVersion(project, "etl", 1)).toMatchObject({ version: 1, labels: ["v1"] });
      expect(await backend.getFlowVersion(project, "etl", 3)).toBeUndefined();
      expect(await backend.getFlowVersion(project, "missing")).toBeUndefined();
    });

    it("keeps annotations per version: keys merge, the newest read sees them, a missing version is NotFound", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(1) }));
      await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(2) }));
      expect((await backend.getFlowVersion(project, "etl", 2))?.annotations).toBeUndefined();
      const first = await backend.annotateFlowVersion(project, "etl", 2, { "fargate.taskDefinition": { arn: "a:1" } });
      expect(first).toMatchObject({ version: 2, annotations: { "fargate.taskDefinition": { arn: "a:1" } } });
      await backend.annotateFlowVersion(project, "etl", 2, {
        "fargate.taskDefinition": { arn: "a:2" },
        other: [1, "x"],
      });
      const expected = { "fargate.taskDefinition": { arn: "a:2" }, other: [1, "x"] };
      expect((await backend.getFlowVersion(project, "etl"))?.annotations).toEqual(expected);
      expect((await backend.getFlowVersion(project, "etl", 2))?.annotations).toEqual(expected);
      expect((await backend.getFlowVersion(project, "etl", 1))?.annotations).toBeUndefined();
      // Registering the same manifest again keeps the version and its annotations.
      const again = await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(2) }));
      expect(again.version.annotations).toEqual(expected);
      await expect(backend.annotateFlowVersion(project, "etl", 9, { k: 1 })).rejects.toBeInstanceOf(NotFoundError);
      await expect(backend.annotateFlowVersion(project, "etl", 2, {})).rejects.toThrow(/at least one key/);
      expect(await backend.getFlowVersion(project, "etl", 9)).toBeUndefined();
    });

    it("lists each flow once with its newest version, filtered by project", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("b", { manifestHash: manifestHash(1) }));
      await backend.registerFlowVersion(version("a", { manifestHash: manifestHash(1) }));
      const a2 = await backend.registerFlowVersion(
        version("a", { manifestHash: manifestHash(2), labels: ["gpu"], environmentType: "fargate" }),
      );
      await backend.registerFlowVersion(version("c", { project: `${project}-other` }));
      const flows = await backend.listFlows(project);
      expect(flows.map((f) => [f.flow, f.latestVersion])).toEqual([
        ["a", 2],
        ["b", 1],
      ]);
      expect(flows[0]).toEqual({
        project,
        flow: "a",
        latestVersion: 2,
        labels: ["gpu"],
        environmentType: "fargate",
        updatedAtMs: a2.version.createdAtMs,
      });
      const all = await backend.listFlows();
      expect(all.filter((f) => f.project.startsWith(project)).map((f) => f.flow)).toEqual(["a", "b", "c"]);
    });
  });

  describe("runs", () => {
    it("creates a Scheduled run at revision 1 with the version's labels and one history entry", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("etl", { labels: ["dev"] }));
      const before = Date.now();
      const { run, created } = await backend.createRun({ project, flow: "etl" });
      expect(created).toBe(true);
      expect(run).toMatchObject({
        project,
        flow: "etl",
        version: 1,
        state: "Scheduled",
        revision: 1,
        labels: ["dev"],
        parameters: {},
        attempts: 0,
      });
      for (const field of ["reason", "lease", "deployment", "outputs", "idempotencyKey"]) {
        expect(run, field).not.toHaveProperty(field);
      }
      expect(run.scheduledAtMs).toBeGreaterThanOrEqual(before);
      expect(run.createdAtMs).toBe(run.updatedAtMs);
      expect(await backend.getRun(run.id)).toEqual(run);
      expect(await backend.getRunHistory(run.id)).toEqual([{ state: "Scheduled", atMs: run.createdAtMs }]);
    });

    it("uses the given version, labels, parameters and scheduledAtMs", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(1), labels: ["dev"] }));
      await backend.registerFlowVersion(version("etl", { manifestHash: manifestHash(2) }));
      const parameters = { day: "2024-01-01", n: 3, nested: { list: [1, null, "x"] } };
      const { run } = await backend.createRun({
        project,
        flow: "etl",
        version: 1,
        labels: ["gpu", "prod"],
        parameters,
        scheduledAtMs: 1_000,
      });
      expect(run).toMatchObject({ version: 1, labels: ["gpu", "prod"], parameters, scheduledAtMs: 1_000 });
      expect(await backend.getRun(run.id)).toEqual(run);
    });

    it("finds run ids by a prefix, in id order, at most limit of them", async () => {
      const { backend } = context();
      const { a, b, c } = await etlRuns(context(), "a", "b", "c");
      for (const run of [a, b, c]) {
        expect(await backend.findRunIds(run.id.slice(0, 8), 5)).toContain(run.id);
        expect(await backend.findRunIds(run.id, 5)).toEqual([run.id]);
      }
      // Every run id is hexadecimal with dashes: "" and a non-hex start match nothing.
      expect(await backend.findRunIds("z", 5)).toEqual([]);
      expect(await backend.findRunIds("", 5)).toEqual([]);
      const ours = [a.id, b.id, c.id];
      const firsts = await Promise.all(ours.map((id) => backend.findRunIds(id.slice(0, 1), 100)));
      for (const [i, found] of firsts.entries()) {
        expect(found).toEqual([...found].sort());
        expect(found).toContain(ours[i]);
      }
      expect(await backend.findRunIds(a.id.slice(0, 1), 1)).toHaveLength(1);
    });

    it("rejects a run of a flow with no registered version with NotFoundError", async () => {
      const { backend, project } = context();
      const attempt = backend.createRun({ project, flow: "nowhere" });
      await expect(attempt).rejects.toThrow(NotFoundError);
      await expect(attempt).rejects.toMatchObject({ code: "NOT_FOUND", kind: "flowVersion" });
      await expect(attempt).rejects.toThrow(/"nowhere".*tern register/s);
      expect(await backend.listRuns({ project })).toEqual([]);
    });

    it("rejects a run of a version that does not exist with NotFoundError", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("etl"));
      await expect(backend.createRun({ project, flow: "etl", version: 7 })).rejects.toMatchObject({
        code: "NOT_FOUND",
        kind: "flowVersion",
      });
    });

    it("returns the existing run for a repeated idempotency key, scoped to the project and the flow", async () => {
      const { backend, version, project } = context();
      const otherProject = `${project}-other`;
      await backend.registerFlowVersion(version("etl"));
      await backend.registerFlowVersion(version("report"));
      await backend.registerFlowVersion(version("etl", { project: otherProject }));
      const first = await backend.createRun({ project, flow: "etl", idempotencyKey: "k1", parameters: { a: 1 } });
      const second = await backend.createRun({ project, flow: "etl", idempotencyKey: "k1", parameters: { a: 2 } });
      const other = await backend.createRun({ project: otherProject, flow: "etl", idempotencyKey: "k1" });
      expect(first.created).toBe(true);
      expect(first.run.idempotencyKey).toBe("k1");
      expect(second).toEqual({ run: first.run, created: false });
      expect(other.created).toBe(true);
      expect(other.run.id).not.toBe(first.run.id);
      // One event may start several flows: the same key on another flow is another run.
      const report = await backend.createRun({ project, flow: "report", idempotencyKey: "k1" });
      expect(report.created).toBe(true);
      expect(report.run.flow).toBe("report");
      expect(await backend.listRuns({ project })).toHaveLength(2);
    });

    it("creates one run for concurrent creates with the same idempotency key", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("etl"));
      const results = await Promise.all(
        Array.from({ length: 5 }, () => backend.createRun({ project, flow: "etl", idempotencyKey: "same" })),
      );
      expect(new Set(results.map((r) => r.run.id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
    });

    it("returns undefined for an unknown run and an empty history", async () => {
      const { backend } = context();
      expect(await backend.getRun("no-such-run")).toBeUndefined();
      expect(await backend.getRunHistory("no-such-run")).toEqual([]);
    });

    it("lists runs newest first, filtered by project, flow and state, up to the limit", async () => {
      const { backend, version, project } = context();
      await backend.registerFlowVersion(version("a"));
      await backend.registerFlowVersion(version("b"));
      const ids: string[] = [];
      for (const flow of ["a", "b", "a", "a"]) {
        ids.push((await backend.createRun({ project, flow })).run.id);
        await sleep(3); // distinct creation times: the contract does not fix the order within a millisecond
      }
      const [a1, b1, a2, a3] = ids as [string, string, string, string];
      const moved = await backend.getRun(a2);
      await backend.transitionRun({ runId: a2, expectedRevision: moved!.revision, to: "Submitted" });
      const list = async (input: Parameters<typeof backend.listRuns>[0]) =>
        (await backend.listRuns(input)).map((r) => r.id);
      expect(await list({ project })).toEqual([a3, a2, b1, a1]);
      expect(await list({ project, flow: "a" })).toEqual([a3, a2, a1]);
      expect(await list({ project, state: "Scheduled" })).toEqual([a3, b1, a1]);
      expect(await list({ project, flow: "a", state: "Submitted" })).toEqual([a2]);
      expect(await list({ project, limit: 2 })).toEqual([a3, a2]);
      expect(await list({ project: `${project}-none` })).toEqual([]);
    });
  });

  describe("task runs, logs and agents", () => {
    it("upserts task runs by id and keeps the order of their first save", async () => {
      const { backend } = context();
      const { run, other } = await etlRuns(context(), "run", "other");
      await backend.saveTaskRuns(run.id, [taskRun(`${run.id}/b`, "Running"), taskRun(`${run.id}/a`, "Pending")]);
      const done: SerializedTaskRun = {
        ...taskRun(`${run.id}/b`, "Success", 2),
        result: { kind: "json", value: { rows: 3 } },
        logs: [{ timeMs: 5, level: "info", message: "hi", source: "logger", fields: { kind: "json", value: 1 } }],
        startedAtMs: 1,
        endedAtMs: 9,
      };
      await backend.saveTaskRuns(run.id, [taskRun(`${run.id}/c`, "Pending"), done]);
      await backend.saveTaskRuns(other.id, [taskRun(`${other.id}/z`, "Failed")]);
      expect(await backend.getTaskRuns(run.id)).toEqual([
        done,
        taskRun(`${run.id}/a`, "Pending"),
        taskRun(`${run.id}/c`, "Pending"),
      ]);
      expect((await backend.getTaskRuns(other.id)).map((t) => t.id)).toEqual([`${other.id}/z`]);
      expect(await backend.getTaskRuns("no-such-run")).toEqual([]);
    });

    it("returns logs in the order they were appended, per run", async () => {
      const { backend } = context();
      const { run, other } = await etlRuns(context(), "run", "other");
      const log = (taskRunId: string, message: string, timeMs: number): RunLogRecord => ({
        taskRunId,
        timeMs,
        level: "info",
        message,
        source: "console",
      });
      const withFields: RunLogRecord = { ...log("t2", "second", 1), level: "warn", fields: { rows: 3, ok: true } };
      await backend.appendLogs(run.id, [log("t1", "first", 9), withFields]);
      await backend.appendLogs(other.id, [log("t9", "elsewhere", 0)]);
      await backend.appendLogs(run.id, [log("t1", "third", 2)]);
      expect(await backend.getLogs(run.id)).toEqual([log("t1", "first", 9), withFields, log("t1", "third", 2)]);
      expect(await backend.getLogs(other.id)).toEqual([log("t9", "elsewhere", 0)]);
      expect(await backend.getLogs("no-such-run")).toEqual([]);
    });

    it("pages logs in append order: every record once, next only while more follow", async () => {
      const { backend } = context();
      const { run, other, quiet } = await etlRuns(context(), "run", "other", "quiet");
      const log = (n: number): RunLogRecord => ({
        taskRunId: `${run.id}/t${n % 2}`,
        timeMs: 100 - n,
        level: n % 3 === 0 ? "warn" : "info",
        message: `line ${n}`,
        source: n % 2 === 0 ? "console" : "logger",
        ...(n === 4 ? { fields: { n, nested: { ok: true } } } : {}),
      });
      const all = Array.from({ length: 7 }, (_, n) => log(n));
      // Appended in three calls, with another run's records in between.
      await backend.appendLogs(run.id, all.slice(0, 2));
      await backend.appendLogs(other.id, [{ ...log(9), taskRunId: `${other.id}/x` }]);
      await backend.appendLogs(run.id, all.slice(2, 5));
      await backend.appendLogs(run.id, all.slice(5));

      const pages: LogPage[] = [];
      let page = await backend.getLogPage(run.id, { limit: 3 });
      pages.push(page);
      while (page.next !== undefined) {
        page = await backend.getLogPage(run.id, { limit: 3, after: page.next });
        pages.push(page);
      }
      expect(pages.flatMap((p) => p.records)).toEqual(all);
      for (const p of pages) expect(p.records.length).toBeLessThanOrEqual(3);
      expect(pages.at(-1)?.next).toBeUndefined();
      expect(pages.slice(0, -1).every((p) => typeof p.next === "string")).toBe(true);

      // An exact fit: seven records in a page of seven has no next.
      expect(await backend.getLogPage(run.id, { limit: 7 })).toEqual({ records: all });
      // The default page holds them all.
      expect(await backend.getLogPage(run.id)).toEqual({ records: all });
      const collected: RunLogRecord[] = [];
      for await (const records of logPages(backend, run.id, 2)) collected.push(...records);
      expect(collected).toEqual(all);
      expect(collected).toEqual(await backend.getLogs(run.id));

      // Records appended after a page was read are found from its cursor.
      const first = await backend.getLogPage(run.id, { limit: 6 });
      expect(first.records).toEqual(all.slice(0, 6));
      await backend.appendLogs(run.id, [log(7)]);
      expect(await backend.getLogPage(run.id, { limit: 6, after: first.next! })).toEqual({
        records: [all[6], log(7)],
      });

      expect(await backend.getLogPage(quiet.id)).toEqual({ records: [] });
      expect(await backend.getLogPage("no-such-run", { limit: 5 })).toEqual({ records: [] });
    });

    it("refuses a log page limit out of range and a cursor it did not make, naming the value", async () => {
      const { backend } = context();
      const { run } = await etlRuns(context(), "run");
      for (const limit of [0, -1, 1.5, MAX_LOG_PAGE_SIZE + 1]) {
        const error = await backend.getLogPage(run.id, { limit }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TernError);
        expect((error as TernError).message).toContain(`limit ${limit} is out of range`);
      }
      for (const after of ["", "abc", "-1", "1e3", "9".repeat(20)]) {
        const error = await backend.getLogPage(run.id, { after }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TernError);
        expect((error as TernError).message).toContain(`cursor ${JSON.stringify(after)} is not one`);
      }
    });

    it("records agents, updates them on the next poll and lists the most recent first", async () => {
      const { backend, project } = context();
      const a = `${project}-agent-a`;
      const b = `${project}-agent-b`;
      const now = Date.now();
      await backend.recordAgent({ id: a, labels: ["dev"], lastSeenAtMs: now - 2_000 });
      await backend.recordAgent({ id: b, labels: [], lastSeenAtMs: now - 1_000 });
      const ours = async () => (await backend.listAgents()).filter((agent) => agent.id.startsWith(project));
      expect(await ours()).toEqual([
        { id: b, labels: [], lastSeenAtMs: now - 1_000 },
        { id: a, labels: ["dev"], lastSeenAtMs: now - 2_000 },
      ]);
      await backend.recordAgent({ id: a, labels: ["dev", "gpu"], lastSeenAtMs: now });
      expect(await ours()).toEqual([
        { id: a, labels: ["dev", "gpu"], lastSeenAtMs: now },
        { id: b, labels: [], lastSeenAtMs: now - 1_000 },
      ]);
    });

    it("accepts a second close", async () => {
      const { backend } = context();
      await backend.close();
      await expect(backend.close()).resolves.toBeUndefined();
    });
  });
}
