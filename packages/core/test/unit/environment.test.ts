import { ConcurrentExecutor, Environment, LocalEnvironment } from "@tern/core";
import {
  type Deployment,
  EnvironmentError,
  environmentFromJSON,
  hasEnvironmentType,
  registerEnvironmentType,
} from "@tern/core/plugin";
import { describe, expect, it } from "vitest";

/** A minimal custom environment, as a user would write one. */
class BatchEnvironment extends Environment {
  static override readonly type = "BatchEnvironment";

  override async execute(): Promise<Deployment> {
    return { details: { kind: "batch" } };
  }
}

describe("Environment type names", () => {
  it("rejects a subclass without its own static type, telling to add it", () => {
    class NoType extends Environment {
      override async execute(): Promise<Deployment> {
        return { details: {} };
      }
    }
    const attempt = () => new NoType();
    expect(attempt).toThrow(EnvironmentError);
    expect(attempt).toThrow(expect.objectContaining({ code: "ENVIRONMENT" }));
    expect(attempt).toThrow('NoType must declare its own type name: add `static readonly type = "NoType"`');
  });

  it("rejects a subclass of a custom environment that inherits its type", () => {
    class Child extends BatchEnvironment {}
    expect(() => new Child()).toThrow(/Child must declare its own type name/);
  });

  it("rejects a subclass of LocalEnvironment without its own type", () => {
    class MyLocal extends LocalEnvironment {}
    const attempt = () => new MyLocal();
    expect(attempt).toThrow(EnvironmentError);
    expect(attempt).toThrow('add `static readonly type = "MyLocal"`');
  });

  it("rejects an empty type name", () => {
    class Blank extends Environment {
      static override readonly type = "  ";
      override async execute(): Promise<Deployment> {
        return { details: {} };
      }
    }
    expect(() => new Blank()).toThrow(/Blank must declare its own type name/);
  });

  for (const builtIn of ["LocalEnvironment", "FargateTaskEnvironment"]) {
    it(`rejects a custom subclass declaring the built-in type "${builtIn}" at construction`, () => {
      class Impostor extends Environment {
        static override readonly type = builtIn;
        override async execute(): Promise<Deployment> {
          return { details: {} };
        }
      }
      const attempt = () => new Impostor();
      expect(attempt).toThrow(EnvironmentError);
      expect(attempt).toThrow(`Impostor declares type "${builtIn}", which is a built-in environment`);
      expect(attempt).toThrow(/Give it a name of its own \(for example "Impostor"\)/);
    });
  }

  it("rejects a LocalEnvironment subclass that declares LocalEnvironment again", () => {
    class Again extends LocalEnvironment {
      static override readonly type = "LocalEnvironment";
    }
    expect(() => new Again()).toThrow(/Again declares type "LocalEnvironment", which is a built-in environment/);
  });

  it("accepts a subclass with its own type and reports it, not built in", () => {
    const environment = new BatchEnvironment({ labels: ["batch"] });
    expect(environment.type).toBe("BatchEnvironment");
    expect(environment.builtIn).toBe(false);
    expect(environment.toJSON()).toEqual({
      type: "BatchEnvironment",
      options: { labels: ["batch"], dependencies: [] },
    });
  });

  it("accepts a LocalEnvironment subclass with its own type", () => {
    class TracedLocal extends LocalEnvironment {
      static override readonly type = "TracedLocal";
    }
    const environment = new TracedLocal();
    expect(environment.type).toBe("TracedLocal");
    expect(environment.builtIn).toBe(false);
  });
});

describe("Environment labels", () => {
  const cases: Array<[string, unknown, RegExp | string]> = [
    ["an empty label", [""], 'label "" is empty or whitespace'],
    ["a whitespace label", ["dev", "  "], 'label "  " is empty or whitespace'],
    ["a label with surrounding spaces", [" gpu "], 'label " gpu " has surrounding spaces; use "gpu"'],
    ["a label that is not a string", ["dev", 7], "label 7 is not a string"],
    ["labels that are not an array", "dev", /labels must be a list of strings, got "dev"/],
  ];
  for (const [what, labels, message] of cases) {
    it(`rejects ${what}, naming it`, () => {
      const attempt = () => new LocalEnvironment({ labels: labels as string[] });
      expect(attempt).toThrow(EnvironmentError);
      expect(attempt).toThrow(message);
      expect(attempt).toThrow(/^LocalEnvironment: /);
    });
  }

  it("names the custom class in a label error", () => {
    expect(() => new BatchEnvironment({ labels: [""] })).toThrow(/^BatchEnvironment: label ""/);
  });

  it("keeps labels in order, without duplicates, and frozen", () => {
    const environment = new LocalEnvironment({ labels: ["dev", "gpu", "dev"] });
    expect(environment.labels).toEqual(["dev", "gpu"]);
    expect(Object.isFrozen(environment.labels)).toBe(true);
  });
});

describe("Environment options", () => {
  it("rejects a hook that is not a function", () => {
    expect(() => new LocalEnvironment({ onStart: "run me" as unknown as () => void })).toThrow(
      /LocalEnvironment: onStart must be a function, got "run me"/,
    );
  });

  it("rejects dependencies that are not package names", () => {
    expect(() => new LocalEnvironment({ dependencies: ["pg", " "] })).toThrow(
      /LocalEnvironment: dependencies must be a list of package names/,
    );
  });

  it("rejects options that are not an object", () => {
    expect(() => new LocalEnvironment(null as unknown as undefined)).toThrow(EnvironmentError);
  });
});

describe("LocalEnvironment JSON", () => {
  it("gives type and options with labels, dependencies and the executor as JSON", () => {
    const environment = new LocalEnvironment({
      labels: ["dev"],
      dependencies: ["node:fs"],
      executor: new ConcurrentExecutor({ maxConcurrency: 4 }),
      onStart: () => {},
    });
    expect(environment.type).toBe("LocalEnvironment");
    expect(environment.builtIn).toBe(true);
    expect(environment.toJSON()).toEqual({
      type: "LocalEnvironment",
      options: {
        labels: ["dev"],
        dependencies: ["node:fs"],
        executor: new ConcurrentExecutor({ maxConcurrency: 4 }).toJSON(),
      },
    });
    // Hooks are code: they are not part of the JSON form.
    expect(JSON.stringify(environment.toJSON())).not.toContain("onStart");
  });

  it("leaves the executor out when none is given", () => {
    expect(new LocalEnvironment().toJSON()).toEqual({
      type: "LocalEnvironment",
      options: { labels: [], dependencies: [] },
    });
  });

  it("is rebuilt from its JSON by environmentFromJSON", () => {
    const environment = new LocalEnvironment({
      labels: ["dev", "gpu"],
      executor: { type: "ConcurrentExecutor", options: { maxConcurrency: 2 } },
    });
    const json = JSON.parse(JSON.stringify(environment.toJSON())) as ReturnType<Environment["toJSON"]>;
    const copy = environmentFromJSON(json);
    expect(copy).toBeInstanceOf(LocalEnvironment);
    expect(copy.labels).toEqual(["dev", "gpu"]);
    expect((copy as LocalEnvironment).executor).toEqual(environment.executor);
    expect(copy.toJSON()).toEqual(environment.toJSON());
  });

  for (const [what, executor, message] of [
    ["an unknown executor type", { type: "QuantumExecutor", options: {} }, /QuantumExecutor/],
    ["a bad concurrency", { type: "ConcurrentExecutor", options: { maxConcurrency: -1 } }, /maxConcurrency/],
    ["an executor that is not an object", "fast", /LocalEnvironment: executor/],
  ] as const) {
    it(`rejects ${what} as its executor`, () => {
      const attempt = () => new LocalEnvironment({ executor: executor as never });
      expect(attempt).toThrow(EnvironmentError);
      expect(attempt).toThrow(/^LocalEnvironment: executor: /);
      expect(attempt).toThrow(message);
    });
  }
});

describe("environment registry", () => {
  it("rejects an unknown type with an error listing the known types", () => {
    const attempt = () => environmentFromJSON({ type: "MainframeEnvironment", options: {} });
    expect(attempt).toThrow(expect.objectContaining({ code: "ENVIRONMENT_TYPE" }));
    expect(attempt).toThrow(/Unknown environment type "MainframeEnvironment"\. This process knows: .*LocalEnvironment/);
  });

  it("rebuilds a registered custom type from JSON", () => {
    const factory = (options: Record<string, unknown>) => new BatchEnvironment(options as { labels?: string[] });
    registerEnvironmentType("BatchEnvironment", factory);
    registerEnvironmentType("BatchEnvironment", factory); // the same factory again is fine
    expect(hasEnvironmentType("BatchEnvironment")).toBe(true);
    const copy = environmentFromJSON(new BatchEnvironment({ labels: ["batch"] }).toJSON());
    expect(copy).toBeInstanceOf(BatchEnvironment);
    expect(copy.labels).toEqual(["batch"]);
  });

  it("rejects registering a taken name with another factory", () => {
    const attempt = () => registerEnvironmentType("LocalEnvironment", () => new LocalEnvironment());
    expect(attempt).toThrow(expect.objectContaining({ code: "ENVIRONMENT_TYPE" }));
    expect(attempt).toThrow('Environment type "LocalEnvironment" is already registered; choose another name.');
    // The built-in factory is still the one used.
    expect(environmentFromJSON({ type: "LocalEnvironment", options: { labels: ["x"] } }).labels).toEqual(["x"]);
  });

  it("reports unregistered types as unknown", () => {
    expect(hasEnvironmentType("NeverRegisteredEnvironment")).toBe(false);
    expect(hasEnvironmentType("LocalEnvironment")).toBe(true);
  });
});
