import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as lambda from "aws-cdk-lib/aws-lambda";

/** tern's Lambda handlers, as `@tern/lambda/handlers/<name>` exports them. */
export const HANDLER_NAMES = ["agent", "task-state", "trigger", "cloudevents"] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

/**
 * Where the package's build (`bin/assets.ts`) writes the handlers' bundles:
 * `assets/handlers/<name>/index.mjs`, beside `lib/` in the repository and `dist/` when installed.
 */
export const HANDLER_ASSETS = fileURLToPath(new URL("../assets/handlers/", import.meta.url));

/** The prebuilt bundle of one handler as Lambda code; a clear error when it was never built. */
export function handlerCode(name: HandlerName, assets: string = HANDLER_ASSETS): lambda.Code {
  const dir = join(assets, name);
  if (!existsSync(join(dir, "index.mjs"))) {
    throw new Error(
      `The bundle of tern's ${name} handler is missing (${join(dir, "index.mjs")}): run pnpm --filter @tern/infra build`,
    );
  }
  return lambda.Code.fromAsset(dir);
}
