/**
 * Image references as `docker pull` reads them (pure): `node:22`, `public.ecr.aws/docker/library/node:22-slim`,
 * `127.0.0.1:5000/base@sha256:…`. A first component with a dot or a port, or `localhost`, is a
 * registry; otherwise the image is on Docker Hub (`registry-1.docker.io`, `library/` for
 * official images).
 */
import { TernError } from "@tern/core";
import { DIGEST_PATTERN } from "../registry/digest.js";

/** An image reference taken apart. */
export interface ImageReference {
  /** `host[:port]` as the registry's API is reached. */
  readonly registry: string;
  readonly repository: string;
  /** A tag or a digest. */
  readonly reference: string;
}

const DOCKER_HUB = "registry-1.docker.io";

/** Parses `[registry/]repository[:tag][@digest]`; `option` names where it was given, for messages. */
export function parseImageReference(text: string, option: string): ImageReference {
  const fail = (why: string) =>
    new TernError(
      "STORAGE_OPTIONS",
      `DockerStorage: ${option} ${JSON.stringify(text)} is not an image reference (${why}); give [registry/]repository[:tag][@sha256:digest], for example public.ecr.aws/docker/library/node:22-bookworm-slim.`,
    );
  if (typeof text !== "string" || text === "" || /\s/.test(text)) throw fail("empty or with spaces");
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_PATTERN.test(digest)) throw fail(`${JSON.stringify(digest)} is not a sha256 digest`);
  }
  const parts = rest.split("/");
  const first = parts[0] ?? "";
  const hasRegistry = parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost");
  const registry = !hasRegistry || first === "docker.io" ? DOCKER_HUB : first;
  let path = (hasRegistry ? parts.slice(1) : parts).join("/");
  let tag: string | undefined;
  const colon = path.lastIndexOf(":");
  if (colon !== -1) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  if (registry === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  if (path === "") throw fail("no repository");
  const reference = digest ?? tag ?? "latest";
  return { registry, repository: path, reference };
}

/** `registry/repository@digest` or `registry/repository:tag`. */
export function formatImageReference(image: ImageReference): string {
  const separator = DIGEST_PATTERN.test(image.reference) ? "@" : ":";
  return `${image.registry}/${image.repository}${separator}${image.reference}`;
}
