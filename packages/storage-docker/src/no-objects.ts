/**
 * DockerStorage's blob store: a registry holds images, not objects under keys, so there is nothing
 * to list or read by key. Removing is a no-op (an image pushed by a registration that failed stays
 * under its content-derived tag, which the next registration reuses); build records cannot be
 * kept, so a flow image is built where the flow is registered.
 */
import { TernError } from "@tern/core";
import type { BlobHead, BlobStore } from "@tern/core/plugin";

export class NoObjects implements BlobStore {
  readonly url: string;

  constructor(url: string) {
    this.url = url;
  }

  describe(key: string): string {
    return `${this.url}/${key}`;
  }

  async put(key: string): Promise<"created" | "exists"> {
    throw this.#unsupported(key);
  }

  async get(key: string): Promise<Uint8Array> {
    throw this.#unsupported(key);
  }

  async head(): Promise<BlobHead | undefined> {
    return undefined;
  }

  async list(): Promise<string[]> {
    return [];
  }

  async delete(): Promise<void> {}

  #unsupported(key: string): TernError {
    return new TernError(
      "STORAGE_TYPE",
      `${this.url} keeps flows in images, not objects under keys (${key}): build records are not kept, so register with building (the default), in the process that bundles the flow.`,
    );
  }
}
