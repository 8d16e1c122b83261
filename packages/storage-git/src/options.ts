/** `GitStorage`'s options and their checks (one zod schema; messages never repeat a URL's credentials). */

import type { StorageOptions } from "@tern/core";
import { checkStorageOptions, registerStorageOptionsSchema } from "@tern/core/plugin";
import * as z from "zod/mini";
import type { GitAuthOptions } from "./auth.js";

export type { GitAuthOptions } from "./auth.js";

/** Options of `GitStorage`. */
export interface GitStorageOptions extends StorageOptions {
  /**
   * The repository: `https://host/owner/name.git`, `http://` for a server on this machine only, or
   * `file:///path/to/bare.git` for a bare repository on a disk every process can reach. It may
   * not carry credentials: give `auth`.
   */
  readonly url: string;
  /** The branch tern writes to; never one of your working branches. @default "tern-flows" */
  readonly branch?: string;
  readonly auth?: GitAuthOptions;
  /**
   * Where this machine keeps its copy of the branch's objects (HTTP(S) repositories). Not stored
   * with flows. @default `<TERN_HOME>/cache/git/<hash of url and branch>`
   */
  readonly cacheDirectory?: string;
}

export const DEFAULT_BRANCH = "tern-flows";
const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** What is wrong with a repository URL, in words that do not repeat it; undefined when nothing. */
export function urlProblem(value: string): string | undefined {
  if (!URL.canParse(value)) return "url is not a URL (for example https://github.com/acme/flows.git).";
  const url = new URL(value);
  if (!["https:", "http:", "file:"].includes(url.protocol)) {
    return `url has the scheme ${url.protocol.replace(/:$/, "")}; GitStorage speaks https://, http:// on this machine and file:// (not ssh).`;
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    return "url carries credentials or parameters (user info, a query or a fragment); it is stored with every flow, so it may not. Give auth: { tokenEnv } instead.";
  }
  if (url.protocol === "http:" && !LOOPBACK.has(url.hostname)) {
    return "url uses http:// to another machine; use https:// (plain HTTP only for a server on this machine).";
  }
  return undefined;
}

/** What is wrong with a branch name (git's rules for ref names, in short); undefined when nothing. */
export function branchProblem(name: string): string | undefined {
  const bad =
    !/^[A-Za-z0-9._/-]+$/.test(name) ||
    name.startsWith("-") ||
    name.split("/").some((part) => part === "" || part.startsWith(".") || part.endsWith(".lock")) ||
    name.includes("..") ||
    name.endsWith(".");
  return bad
    ? `branch ${JSON.stringify(name)} is not a valid branch name (letters, digits, ".", "_", "-" and "/" between parts).`
    : undefined;
}

/** What is wrong with an environment variable's name; undefined when nothing. */
function envNameProblem(name: string): string | undefined {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)
    ? undefined
    : `auth.tokenEnv must name an environment variable, got ${JSON.stringify(name)}.`;
}

/** What is wrong with a Secrets Manager secret's ARN given as `option`; undefined when nothing. */
export function secretArnProblem(arn: string, option = "auth.secretArn"): string | undefined {
  return /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/.test(arn)
    ? undefined
    : `${option} must be a Secrets Manager secret's ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>), got ${JSON.stringify(arn)}.`;
}

/** A string that `problem` finds nothing wrong with (its message is the issue). */
export const checked = (problem: (value: string) => string | undefined) =>
  z.string().check(
    z.superRefine((value, context) => {
      const message = problem(value);
      if (message !== undefined) context.addIssue({ code: "custom", message });
    }),
  );

const schema = z.strictObject({
  prefix: z.optional(z.string()),
  external: z.optional(z.readonly(z.array(z.string()))),
  url: checked(urlProblem),
  branch: z.optional(checked(branchProblem)),
  auth: z.optional(
    z
      .strictObject({
        tokenEnv: z.optional(checked(envNameProblem)),
        secretArn: z.optional(checked((arn) => secretArnProblem(arn))),
        username: z.optional(z.string()),
      })
      .check(
        z.refine(
          (auth) => (auth.tokenEnv === undefined) !== (auth.secretArn === undefined),
          "auth takes one of tokenEnv (an environment variable) and secretArn (a Secrets Manager secret).",
        ),
      ),
  ),
  cacheDirectory: z.optional(z.string()),
});
registerStorageOptionsSchema("GitStorage", schema);

export function checkGitStorageOptions(options: GitStorageOptions): GitStorageOptions {
  checkStorageOptions("GitStorage", schema, options);
  return options;
}
