import { describe, expect, it, vi } from "vitest";
import { EnvironmentError } from "../../src/environment/environment.js";
import {
  BackendError,
  isRetryable,
  isTernError,
  NotFoundError,
  RunConflictError,
  SkipSignal,
  TernError,
} from "../../src/errors.js";

describe("isTernError", () => {
  it("recognises tern errors, of any class, and of a given code", () => {
    const conflict = new RunConflictError("r1", 3, 4);
    expect(isTernError(conflict)).toBe(true);
    expect(isTernError(conflict, "RUN_CONFLICT")).toBe(true);
    expect(isTernError(conflict, "NOT_FOUND")).toBe(false);
    expect(isTernError(new TernError("RUN_GONE", "gone"), "RUN_GONE")).toBe(true);
    expect(isTernError(new SkipSignal(), "SKIP")).toBe(true);
  });

  it("does not take an error that only looks like one for a tern error", () => {
    const lookalike = Object.assign(new Error("x"), { code: "NOT_FOUND", retryable: true });
    expect(isTernError(lookalike)).toBe(false);
    expect(isTernError(lookalike, "NOT_FOUND")).toBe(false);
    expect(isRetryable(lookalike)).toBe(false);
    for (const value of [undefined, null, "NOT_FOUND", 42, { code: "NOT_FOUND" }]) {
      expect(isTernError(value)).toBe(false);
    }
  });

  it("recognises an error made by another copy of core (another version, a bundle)", async () => {
    vi.resetModules();
    const other = await import("../../src/errors.js");
    expect(other.TernError).not.toBe(TernError);
    const error = other.NotFoundError.run("r1", "sqlite:///x.db");
    // instanceof only knows its own copy's class; the brand is shared.
    expect(error instanceof TernError).toBe(false);
    expect(isTernError(error)).toBe(true);
    expect(isTernError(error, "NOT_FOUND")).toBe(true);
    expect(isRetryable(new other.BackendError("throttled", { retryable: true }))).toBe(true);
    expect(other.isTernError(new RunConflictError("r1", 1, 2), "RUN_CONFLICT")).toBe(true);
  });

  it("brands with a global symbol that stays out of keys, logs and equality", () => {
    const error = new BackendError("down", { retryable: true });
    expect(Object.getOwnPropertyDescriptor(error, Symbol.for("tern.error"))).toMatchObject({
      value: true,
      enumerable: false,
    });
    expect(error).toEqual(new BackendError("down", { retryable: true }));
    expect(error).toMatchObject({ name: "BackendError", code: "BACKEND", retryable: true, message: "down" });
  });
});

describe("retryable", () => {
  it("is set where the error is made, and false unless said", () => {
    expect(new TernError("STORAGE", "x").retryable).toBe(false);
    expect(isRetryable(new TernError("STORAGE", "x", { retryable: true }))).toBe(true);
    expect(isRetryable(new RunConflictError("r1", 1, 2))).toBe(true);
    expect(isRetryable(new Error("x"))).toBe(false);
  });
});

describe("NotFoundError factories", () => {
  it("names a missing run with where tern looked", () => {
    expect(NotFoundError.run("r1", "sqlite:///x.db")).toMatchObject({
      name: "NotFoundError",
      code: "NOT_FOUND",
      kind: "run",
      id: "r1",
      message: "Run r1 does not exist in sqlite:///x.db. Check the id with `tern runs`.",
    });
  });

  it("names a missing flow version, alone or as a run's", () => {
    expect(NotFoundError.flowVersion("p", "etl", 3, "sqlite:///x.db")).toMatchObject({
      kind: "flowVersion",
      id: "p/etl@3",
      message: 'Flow "etl" version 3 (project "p") is not in sqlite:///x.db.',
    });
    expect(NotFoundError.flowVersion("p", "etl", 3, "sqlite:///x.db", "r1").message).toBe(
      'Run r1: flow "etl" version 3 (project "p") is not in sqlite:///x.db.',
    );
  });

  it("says how to register a flow that is not registered", () => {
    expect(NotFoundError.unregistered("p", "etl", undefined, "sqlite:///x.db")).toMatchObject({
      kind: "flowVersion",
      id: "p/etl@latest",
      message:
        'Flow "etl" is not registered in project "p" (sqlite:///x.db). ' +
        'Register it with `tern register <file> --project "p"`, or check `tern flows`.',
    });
    expect(NotFoundError.unregistered("p", "etl", 2, "u").message).toMatch(/^Flow "etl" version 2 is not registered/);
  });

  it("names a missing object as its store does, keeping the cause", () => {
    const cause = new Error("ENOENT");
    expect(NotFoundError.blob("flows/x.json", "s3://b/flows/x.json", { cause })).toMatchObject({
      kind: "blob",
      id: "flows/x.json",
      message: "s3://b/flows/x.json does not exist.",
      cause,
    });
  });

  it("says a registered flow's manifest or bundle was deleted from its storage", () => {
    const cause = NotFoundError.blob("flows/etl/b.mjs", "s3://b/flows/etl/b.mjs");
    expect(
      NotFoundError.flowBlob('"etl"', "bundle", "flows/etl/b.mjs", "s3://b/flows/etl/b.mjs", { cause }),
    ).toMatchObject({
      kind: "blob",
      id: "flows/etl/b.mjs",
      message:
        'Flow "etl": its bundle s3://b/flows/etl/b.mjs is missing from storage. It was deleted (check lifecycle ' +
        "rules or clean-up jobs on the storage); register the flow again.",
      cause,
    });
  });
});

describe("EnvironmentError", () => {
  it("takes a cause and whether the launch may pass later, like every tern error", () => {
    const cause = new Error("Rate exceeded");
    const error = new EnvironmentError("registering failed", { cause, retryable: true });
    expect(error).toMatchObject({ name: "EnvironmentError", code: "ENVIRONMENT", retryable: true, cause });
    expect(isRetryable(new EnvironmentError("bad option"))).toBe(false);
  });
});
