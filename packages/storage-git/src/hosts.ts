/**
 * `GitHubStorage`, `GitLabStorage` and `BitbucketStorage`: a `GitStorage` whose URL and token user
 * follow from the hosting service and a repository name. They store as `GitStorage` (their JSON is
 * its JSON), so a runner needs nothing more than `@tern/storage-git` to rebuild them.
 */
import { checkStorageOptions, registerStorageOptionsSchema } from "@tern/core/plugin";
import * as z from "zod/mini";
import { GitStorage } from "./git-storage.js";
import { checked, type GitStorageOptions, secretArnProblem } from "./options.js";

/** Options of the hosting services' storages. */
export interface HostedGitOptions extends Omit<GitStorageOptions, "url" | "auth"> {
  /** The repository: `owner/name` (GitLab: `group/subgroup/name` too). */
  readonly repo: string;
  /** The environment variable holding the token, read at each use (default: the service's usual one). */
  readonly tokenEnv?: string;
  /** A Secrets Manager secret holding the token (its ARN), instead of `tokenEnv`; read at use. */
  readonly tokenSecretArn?: string;
  /** A self-hosted instance (GitHub Enterprise Server, GitLab): its host name. */
  readonly host?: string;
}

interface Service {
  readonly name: string;
  readonly host: string;
  readonly tokenEnv: string;
  /** The user name the service expects beside a token in HTTP basic auth. */
  readonly username: string;
  /** How many path segments `repo` has: `owner/name`, or GitLab's groups. */
  readonly repo: RegExp;
}

const SEGMENT = "[A-Za-z0-9_.-]+";
const SERVICES = {
  github: {
    name: "GitHubStorage",
    host: "github.com",
    tokenEnv: "GITHUB_TOKEN",
    username: "x-access-token",
    repo: new RegExp(`^${SEGMENT}/${SEGMENT}$`),
  },
  gitlab: {
    name: "GitLabStorage",
    host: "gitlab.com",
    tokenEnv: "GITLAB_TOKEN",
    username: "oauth2",
    repo: new RegExp(`^${SEGMENT}(/${SEGMENT})+$`),
  },
  bitbucket: {
    name: "BitbucketStorage",
    host: "bitbucket.org",
    tokenEnv: "BITBUCKET_TOKEN",
    username: "x-token-auth",
    repo: new RegExp(`^${SEGMENT}/${SEGMENT}$`),
  },
} as const satisfies Record<string, Service>;

function schemaOf(service: Service) {
  const schema = z
    .strictObject({
      prefix: z.optional(z.string()),
      external: z.optional(z.readonly(z.array(z.string()))),
      repo: z.string().check(
        z.superRefine((repo, context) => {
          if (!service.repo.test(repo) || repo.split("/").some((part) => part === "." || part === "..")) {
            context.addIssue({
              code: "custom",
              message: `repo must be "owner/name" on ${service.host}, got ${JSON.stringify(repo)}.`,
            });
          }
        }),
      ),
      tokenEnv: z.optional(z.string()),
      tokenSecretArn: z.optional(checked((arn) => secretArnProblem(arn, "tokenSecretArn"))),
      host: z.optional(
        z.string().check(z.regex(/^[A-Za-z0-9.-]+(:\d+)?$/, "host must be a host name, such as github.example.com.")),
      ),
      branch: z.optional(z.string()),
      cacheDirectory: z.optional(z.string()),
    })
    .check(
      z.refine(
        (options) => options.tokenEnv === undefined || options.tokenSecretArn === undefined,
        "give tokenEnv or tokenSecretArn, not both.",
      ),
    );
  registerStorageOptionsSchema(service.name, schema);
  return schema;
}

/** The `GitStorage` options a hosting service's options stand for. */
function gitOptions(service: Service, options: HostedGitOptions): GitStorageOptions {
  const { repo, tokenEnv, tokenSecretArn, host, ...rest } = options;
  return {
    ...rest,
    url: `https://${host ?? service.host}/${repo.replace(/\.git$/, "")}.git`,
    auth:
      tokenSecretArn === undefined
        ? { tokenEnv: tokenEnv ?? service.tokenEnv, username: service.username }
        : { secretArn: tokenSecretArn, username: service.username },
  };
}

const githubSchema = schemaOf(SERVICES.github);
const gitlabSchema = schemaOf(SERVICES.gitlab);
const bitbucketSchema = schemaOf(SERVICES.bitbucket);

/** Flows on a branch of a GitHub repository; the token (`GITHUB_TOKEN` by default) needs contents: write to register. */
export class GitHubStorage extends GitStorage {
  constructor(options: HostedGitOptions) {
    checkStorageOptions(SERVICES.github.name, githubSchema, options);
    super(gitOptions(SERVICES.github, options));
  }
}

/** Flows on a branch of a GitLab project; the token (`GITLAB_TOKEN` by default) needs write_repository to register. */
export class GitLabStorage extends GitStorage {
  constructor(options: HostedGitOptions) {
    checkStorageOptions(SERVICES.gitlab.name, gitlabSchema, options);
    super(gitOptions(SERVICES.gitlab, options));
  }
}

/** Flows on a branch of a Bitbucket Cloud repository; the access token (`BITBUCKET_TOKEN` by default) needs repository write to register. */
export class BitbucketStorage extends GitStorage {
  constructor(options: HostedGitOptions) {
    checkStorageOptions(SERVICES.bitbucket.name, bitbucketSchema, options);
    super(gitOptions(SERVICES.bitbucket, options));
  }
}
