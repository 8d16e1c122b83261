/** `DockerStorage`'s options and their checks (one zod schema; messages name the value and the fix). */
import type { StorageOptions } from "@tern/core";
import { TernError } from "@tern/core";
import { checkStorageOptions, registerStorageOptionsSchema } from "@tern/core/plugin";
import * as z from "zod/mini";
import { type DockerAuthOptions, dockerAuthSchema, registryAuthProblem } from "./auth-options.js";
import { parseDependency } from "./image/dependencies.js";
import { parseImageReference } from "./image/reference.js";

/** Options of `DockerStorage`. */
export interface DockerStorageOptions extends StorageOptions {
  /**
   * The registry flow images are pushed to, as image references name it: `ghcr.io`,
   * `123456789012.dkr.ecr.eu-west-1.amazonaws.com`, `127.0.0.1:5000`. Reached over https, or plain
   * HTTP on this machine only.
   */
  readonly registry: string;
  /** The repository in it: `acme/flows`. One image per flow version, each under its own tag. */
  readonly repository: string;
  /**
   * The image flows are added to, with a Node.js 20 or later: `[registry/]repository[:tag][@digest]`.
   * Its Env, Entrypoint, Cmd and User are kept.
   * @default the runner's stock Node image, public.ecr.aws/docker/library/node:22.23.1-bookworm-slim
   */
  readonly baseImage?: string;
  /** The start of every image's tag, before its content hash (`<tag>-<hash>`). @default the flow's name, slugified */
  readonly tag?: string;
  /**
   * npm packages installed into the image for its platform (native modules such as `sharp`):
   * `name` takes the version installed in the flow's project, `name@version` that version. They
   * are left out of the bundle and resolve from the image's `/tern/node_modules`.
   * @default []
   */
  readonly dependencies?: readonly string[];
  /** Files and directories copied into the image: `{ "./models/m.onnx": "/opt/models/m.onnx" }` (local path, relative to the working directory, to an absolute path in the image). */
  readonly files?: Readonly<Record<string, string>>;
  /** Environment variables added to the image's (not for secrets: they are stored with the flow). */
  readonly env?: Readonly<Record<string, string>>;
  /** The platform the image is built for; a multi-platform base resolves to it. @default "linux/amd64" */
  readonly platform?: "linux/amd64" | "linux/arm64";
  /** How to authenticate to the registry. @default ECR for an ECR registry, else anonymous */
  readonly auth?: DockerAuthOptions;
}

export const DEFAULT_BASE_IMAGE = "public.ecr.aws/docker/library/node:22.23.1-bookworm-slim";
export const DEFAULT_PLATFORM = "linux/amd64";

/** Names of variables that hold secrets: those go to the run's environment (secrets), never into an image. */
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|ACCESS_KEY|CREDENTIAL)/i;

const problemCheck = (problem: (value: string) => string | undefined) =>
  z.superRefine((value: string, context) => {
    const message = problem(value);
    if (message !== undefined) context.addIssue({ code: "custom", message });
  });

const checked = (problem: (value: string) => string | undefined) => z.string().check(problemCheck(problem));

function registryProblem(value: string): string | undefined {
  return /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:]+\])(?::\d{1,5})?$/i.test(
    value,
  )
    ? undefined
    : `registry ${JSON.stringify(value)} is not a registry host (host[:port], without a scheme or path; for example ghcr.io or 127.0.0.1:5000).`;
}

function repositoryProblem(value: string): string | undefined {
  return value.length <= 255 &&
    /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(value)
    ? undefined
    : `repository ${JSON.stringify(value)} is not a repository name (lower-case letters and digits, parts joined by ".", "_", "__" or "-", path components joined by "/"; for example acme/flows).`;
}

function baseImageProblem(value: string): string | undefined {
  try {
    parseImageReference(value, "baseImage");
    return undefined;
  } catch (error) {
    return (error as Error).message.replace(/^DockerStorage: /, "");
  }
}

function tagProblem(value: string): string | undefined {
  return /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/.test(value)
    ? undefined
    : `tag ${JSON.stringify(value)} is not a tag start (up to 64 letters, digits, ".", "_" and "-", not starting with "." or "-").`;
}

/** What `parseDependency` (the dependencies layer's own reading of a spec) finds wrong with one. */
function dependencyProblem(value: string): string | undefined {
  try {
    parseDependency(value);
    return undefined;
  } catch (error) {
    return `dependencies: ${JSON.stringify(value)} is not an npm package. ${(error as Error).message}`;
  }
}

function imagePathProblem(value: string): string | undefined {
  const parts = value.split("/");
  return value.startsWith("/") && parts.slice(1).every((p) => p !== "" && p !== "." && p !== "..") && value !== "/"
    ? undefined
    : `files: ${JSON.stringify(value)} is not a path in the image (an absolute path without "." or ".." parts, for example /opt/models/m.onnx).`;
}

function envNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return `env: ${JSON.stringify(name)} is not a variable name.`;
  if (name.startsWith("TERN_")) return `env: ${name} is tern's own; set it where the runner starts instead.`;
  if (SECRET_NAME.test(name)) {
    return `env: ${name} looks like a secret; an image's environment is stored in the image and with the flow. Pass secrets when runs start (FargateTaskEnvironment's secrets).`;
  }
  return undefined;
}

const schema = z.strictObject({
  prefix: z.optional(z.string()),
  external: z.optional(z.readonly(z.array(z.string()))),
  registry: checked(registryProblem),
  repository: checked(repositoryProblem),
  baseImage: z.optional(checked(baseImageProblem)),
  tag: z.optional(checked(tagProblem)),
  dependencies: z.optional(z.readonly(z.array(checked(dependencyProblem)))),
  files: z.optional(z.readonly(z.record(z.string().check(z.minLength(1)), checked(imagePathProblem)))),
  // Names are checked on the whole record: zod reports a bad record key without its message.
  env: z.optional(
    z.readonly(
      z.record(z.string(), z.string()).check(
        z.superRefine((env, context) => {
          for (const name of Object.keys(env)) {
            const message = envNameProblem(name);
            if (message !== undefined) context.addIssue({ code: "custom", message });
          }
        }),
      ),
    ),
  ),
  platform: z.optional(z.enum(["linux/amd64", "linux/arm64"])),
  auth: z.optional(dockerAuthSchema),
});
registerStorageOptionsSchema("DockerStorage", schema);

/** The options, checked: a `STORAGE_OPTIONS` error names every problem. */
export function checkDockerStorageOptions(options: DockerStorageOptions): DockerStorageOptions {
  checkStorageOptions("DockerStorage", schema, options);
  const problem = registryAuthProblem(options.registry, options.auth);
  if (problem !== undefined) throw new TernError("STORAGE_OPTIONS", `DockerStorage: ${problem}`);
  return options;
}
