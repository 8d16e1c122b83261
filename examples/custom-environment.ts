/**
 * A custom environment: a subclass of Environment with its own type name. The agent does not
 * have this class; it runs `setup` and `execute` from the flow's verified bundle in a child
 * process (`tern deploy`). Here `setup` prepares an audit file and `execute` records the run in
 * it before starting the runner the way LocalEnvironment does.
 *
 *   pnpm tern register examples/custom-environment.ts && pnpm tern run audited && pnpm tern agent --once
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { Environment, type EnvironmentOptions, Flow, LocalEnvironment, type Storage, task } from "@tern/core";
import type { Deployment, ExecuteContext } from "@tern/core/plugin";
import { ternHome } from "@tern/core/runtime";

export class AuditedLocalEnvironment extends Environment {
  static override readonly type = "AuditedLocalEnvironment";

  constructor(
    private readonly auditFile: string | undefined = undefined,
    options: EnvironmentOptions = {},
  ) {
    super(options);
  }

  private get file(): string {
    return this.auditFile ?? process.env.TERN_EXAMPLE_AUDIT ?? join(ternHome(), "audit.log");
  }

  override async setup(_storage: Storage): Promise<void> {
    mkdirSync(dirname(this.file), { recursive: true });
  }

  override async execute(storage: Storage, location: string, context: ExecuteContext): Promise<Deployment> {
    appendFileSync(this.file, `execute run=${context.run.id} flow=${context.run.flow} pid=${process.pid}\n`);
    const deployment = await new LocalEnvironment().execute(storage, location, context);
    return { ...deployment, details: { ...deployment.details, audited: true } };
  }
}

export const stamp = task("stamp", () => new Date(0).toISOString());

export const flow = new Flow("audited", { environment: new AuditedLocalEnvironment() }, () => ({ stamp: stamp() }));
