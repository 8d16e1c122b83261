import { Flow, LocalEnvironment, MemoryStorage, task } from "@tern/core";
import { describe, expect, it } from "vitest";

const work = task("work", () => 1);
const build = () => ({ out: work() });

describe("a flow's storage and environment, set after the flow is built", () => {
  it("are taken by assignment, and undefined puts the default back", () => {
    const flow = new Flow("placed", {}, build);
    const storage = new MemoryStorage();
    const environment = new LocalEnvironment({ labels: ["dev"] });
    flow.storage = storage;
    flow.environment = environment;
    expect(flow.storage).toBe(storage);
    expect(flow.environment).toBe(environment);
    flow.storage = undefined;
    expect(flow.storage).toBeUndefined();
  });

  it("are recognised by shape, so a storage from another copy of tern (a bundle's) is one", () => {
    const flow = new Flow("copied", {}, build);
    const own = new MemoryStorage();
    // An object with a storage's methods but not this copy's class.
    const copy = Object.assign(Object.create(null), {
      add: own.add,
      build: own.build,
      built: own.built,
      writeManifest: own.writeManifest,
      readManifest: own.readManifest,
      load: own.load,
      toJSON: own.toJSON,
    }) as object;
    flow.storage = copy;
    expect(flow.storage).toBe(copy);
  });

  it.each([
    {
      set: (flow: Flow) => {
        flow.storage = "./flows" as unknown as object;
      },
      message:
        'Flow "f": storage must be a Storage (new LocalStorage(), or S3Storage from @tern/storage-cloud), got "./flows".',
    },
    {
      set: (flow: Flow) => {
        flow.storage = { type: "LocalStorage", options: {} };
      },
      message:
        'Flow "f": storage must be a Storage, got its JSON form ("LocalStorage" with options); construct it instead: new LocalStorage(), or S3Storage from @tern/storage-cloud.',
    },
    {
      set: (flow: Flow) => {
        flow.environment = new MemoryStorage();
      },
      message:
        'Flow "f": environment must be an Environment (new LocalEnvironment({ labels }), FargateTaskEnvironment from @tern/env-fargate, or a subclass of Environment), got an object (MemoryStorage).',
    },
    {
      set: (flow: Flow) => {
        flow.environment = null as unknown as object;
      },
      message: 'Flow "f": environment must be an Environment',
    },
  ])("are refused on assignment when they are not one, naming the value and the fix (%#)", ({ set, message }) => {
    const flow = new Flow("f", {}, build);
    expect(() => set(flow)).toThrow(message);
    expect(flow.storage).toBeUndefined();
    expect(flow.environment).toBeUndefined();
  });

  it("are checked the same way when given to new Flow", () => {
    expect(() => new Flow("f", { storage: 42 as unknown as object }, build)).toThrow(
      'Flow "f": storage must be a Storage (new LocalStorage(), or S3Storage from @tern/storage-cloud), got 42.',
    );
  });
});
