import { storageFromJSON } from "@tern/core/plugin";
import { BitbucketStorage, GitHubStorage, GitLabStorage, GitStorage } from "@tern/storage-git";
import { describe, expect, it } from "vitest";

describe("the hosting services' storages", () => {
  it("are a GitStorage with the service's URL and token user, stored as one", () => {
    const github = new GitHubStorage({ repo: "acme/flows" });
    expect(github.toJSON()).toEqual({
      type: "GitStorage",
      options: {
        prefix: "flows",
        url: "https://github.com/acme/flows.git",
        auth: { tokenEnv: "GITHUB_TOKEN", username: "x-access-token" },
      },
    });
    expect(storageFromJSON(github.toJSON())).toBeInstanceOf(GitStorage);
    expect(new GitLabStorage({ repo: "data/platform/flows", host: "gitlab.acme.io", branch: "tern" }).toJSON()).toEqual(
      {
        type: "GitStorage",
        options: {
          prefix: "flows",
          url: "https://gitlab.acme.io/data/platform/flows.git",
          branch: "tern",
          auth: { tokenEnv: "GITLAB_TOKEN", username: "oauth2" },
        },
      },
    );
    expect(new BitbucketStorage({ repo: "acme/flows.git", tokenEnv: "BB" }).toJSON().options).toMatchObject({
      url: "https://bitbucket.org/acme/flows.git",
      auth: { tokenEnv: "BB", username: "x-token-auth" },
    });
  });

  it("refuse a repository that is not owner/name, and an unknown option, naming them", () => {
    expect(() => new GitHubStorage({ repo: "flows" })).toThrow(
      /GitHubStorage.*repo must be "owner\/name" on github\.com, got "flows"/s,
    );
    expect(() => new GitHubStorage({ repo: "a/b/c" })).toThrow(/repo must be "owner\/name"/);
    expect(() => new BitbucketStorage({ repo: "acme/../x" })).toThrow(/repo must be "owner\/name" on bitbucket\.org/);
    expect(() => new GitLabStorage({ repo: "acme/flows", url: "https://x" } as never)).toThrow(/unknown option "url"/);
  });
});
