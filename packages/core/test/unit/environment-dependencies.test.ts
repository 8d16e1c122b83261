import { Environment, type EnvironmentOptions, LocalEnvironment } from "@tern/core";
import type { Deployment } from "@tern/core/plugin";
import { describe, expect, it } from "vitest";

/** A custom environment that declares its packages the Prefect way, with a getter. */
class PostgresEnvironment extends Environment {
  static override readonly type: string = "PostgresEnvironment";
  override get dependencies(): readonly string[] {
    return ["pg", "node:fs"];
  }
  override async execute(): Promise<Deployment> {
    return { details: {} };
  }
}

describe("an environment's dependencies", () => {
  it("are what a subclass's `get dependencies()` returns, in its JSON too", () => {
    const environment = new PostgresEnvironment();
    expect(environment.dependencies).toEqual(["pg", "node:fs"]);
    expect(environment.toJSON().options.dependencies).toEqual(["pg", "node:fs"]);
  });

  it("are the dependencies option of an environment without a getter", () => {
    expect(new LocalEnvironment({ dependencies: ["pg"] }).dependencies).toEqual(["pg"]);
    expect(new LocalEnvironment().dependencies).toEqual([]);
  });

  it("refuses the option on a class whose getter would hide it", () => {
    class Given extends PostgresEnvironment {
      static override readonly type = "Given";
      constructor(options: EnvironmentOptions) {
        super(options);
      }
    }
    expect(() => new Given({ dependencies: ["mysql"] })).toThrow(
      "Given declares `get dependencies()` and was also given the dependencies option an array of 1, which the getter hides. Declare them in one place.",
    );
  });

  it.each([
    {
      what: "a getter that returns a string",
      get: () => "pg",
      message: 'get dependencies() must be a list of package names (for example ["pg"]), got "pg".',
    },
    { what: "a getter that returns an empty name", get: () => ["pg", ""], message: "got an array of 2." },
  ])("refuses $what when it is read, naming the value", ({ get, message }) => {
    class Bad extends PostgresEnvironment {
      static override readonly type = "Bad";
      override get dependencies(): readonly string[] {
        return get() as readonly string[];
      }
    }
    expect(() => new Bad().dependencies).toThrow(message);
  });

  it("refuses dependencies declared as a method, and an assignment, with the way to declare them", () => {
    class Method extends PostgresEnvironment {
      static override readonly type = "Method";
    }
    Object.defineProperty(Method.prototype, "dependencies", { value: () => ["pg"] });
    expect(() => new Method()).toThrow(
      /Method declares dependencies as a function \(value\); declare them with a getter/,
    );
    class Assigning extends PostgresEnvironment {
      static override readonly type = "Assigning";
      constructor() {
        super();
        (this as { dependencies: unknown }).dependencies = ["pg"];
      }
    }
    expect(() => new Assigning()).toThrow(/cannot be assigned. Declare them in the class with `get dependencies\(\)/);
    expect(() => {
      (new LocalEnvironment() as { dependencies: unknown }).dependencies = ["pg"];
    }).toThrow(/cannot be assigned/);
  });
});
