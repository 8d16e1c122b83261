/**
 * `RegistryClient`: one registry's Distribution API (v2) over `fetch`, for pushing and reading
 * images with no Docker daemon. Each method names the repository it acts on; tokens are fetched on
 * the registry's first challenge and kept per scope.
 */
import { RegistryError } from "../errors.js";
import type { RegistryAuth } from "./auth.js";
import {
  type BlobPush,
  type BlobRef,
  mountBlob,
  openBlob,
  pushBlob,
  readBlob,
  statBlob,
  uploadBlob,
  uploadBlobStream,
} from "./blobs.js";
import { DIGEST_PATTERN } from "./digest.js";
import { type FetchedManifest, getImageManifest, getManifest, putManifest, statManifest } from "./manifests.js";
import type { Descriptor, ImageIndex, ImageManifest, ManifestMediaType } from "./media-types.js";
import type { PlatformWanted } from "./platform.js";
import { RegistryTransport } from "./transport.js";

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions {
  /**
   * The registry as image references name it: `ghcr.io`, `123456789012.dkr.ecr.eu-west-1.amazonaws.com`,
   * `127.0.0.1:5000`. It is reached over https, or plain HTTP when it is on this machine
   * (localhost, 127.0.0.1, [::1]).
   */
  readonly registry: string;
  /** @default - anonymous (a registry's token flow still gives anonymous pull tokens) */
  readonly auth?: RegistryAuth;
  /** How long one request may take, its answer's body included. @default 120_000 */
  readonly timeoutMs?: number;
  /** Blobs larger than this are uploaded in PATCHes of this size. @default 16 MiB */
  readonly chunkBytes?: number;
}

// The Distribution spec's grammar for repository names.
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * A client of one registry.
 *
 * @example
 * const client = new RegistryClient({ registry: "ghcr.io", auth: { username: "ci", password: token } });
 * const layer = await client.pushBlob("acme/flows", bytes, { mountFrom: ["acme/base"] });
 * const image = await client.getImageManifest("library/node", "20", { os: "linux", architecture: "arm64" });
 */
export class RegistryClient {
  readonly #transport: RegistryTransport;
  readonly #chunkBytes: number | undefined;

  constructor(options: RegistryClientOptions) {
    this.#transport = new RegistryTransport(options);
    this.#chunkBytes = options.chunkBytes;
  }

  /** The registry's `host[:port]`. */
  get registry(): string {
    return this.#transport.registry;
  }

  /** Checks that the registry speaks the v2 API and accepts these credentials (`GET /v2/`). */
  async ping(): Promise<void> {
    const response = await this.#transport.send({ what: "reach the v2 API", scopes: [], method: "GET", url: "/v2/" });
    await response.body?.cancel();
  }

  /** The blob's size when the repository holds it; undefined when it does not. */
  statBlob(repository: string, digest: string): Promise<BlobRef | undefined> {
    return statBlob(this.#transport, this.#repository(repository), this.#digest(repository, digest));
  }

  /** Uploads bytes as a blob, without checking whether the repository has them. */
  uploadBlob(repository: string, content: Uint8Array, options: { readonly digest?: string } = {}): Promise<BlobRef> {
    const digest = options.digest === undefined ? undefined : this.#digest(repository, options.digest);
    return uploadBlob(this.#transport, this.#repository(repository), content, this.#chunkBytes, digest);
  }

  /** Uploads a blob of `digest` from a stream (another registry's `openBlob`), holding at most one chunk of it. */
  uploadBlobStream(
    repository: string,
    digest: string,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<BlobRef> {
    return uploadBlobStream(
      this.#transport,
      this.#repository(repository),
      this.#digest(repository, digest),
      chunks,
      this.#chunkBytes,
    );
  }

  /** Links a blob of repository `from` into `repository` without sending it; false when the registry could not. */
  mountBlob(repository: string, digest: string, from: string): Promise<boolean> {
    return mountBlob(
      this.#transport,
      this.#repository(repository),
      this.#digest(repository, digest),
      this.#repository(from),
    );
  }

  /** Makes sure the repository holds the bytes: nothing sent when it has them, a mount when a `mountFrom` repository has them, else an upload. */
  pushBlob(
    repository: string,
    content: Uint8Array,
    options: { readonly mountFrom?: readonly string[]; readonly digest?: string } = {},
  ): Promise<BlobPush> {
    const mountFrom = options.mountFrom?.map((from) => this.#repository(from));
    return pushBlob(this.#transport, this.#repository(repository), content, {
      mountFrom,
      chunkBytes: this.#chunkBytes,
      ...(options.digest === undefined ? {} : { digest: this.#digest(repository, options.digest) }),
    });
  }

  /** The blob as a stream that fails at its end when its bytes do not have `digest`. */
  openBlob(repository: string, digest: string): Promise<ReadableStream<Uint8Array>> {
    return openBlob(this.#transport, this.#repository(repository), this.#digest(repository, digest));
  }

  /** The whole blob, digest verified. */
  readBlob(repository: string, digest: string): Promise<Uint8Array> {
    return readBlob(this.#transport, this.#repository(repository), this.#digest(repository, digest));
  }

  /** Puts a manifest or index under a tag (or its own digest); resolves its descriptor. */
  putManifest(
    repository: string,
    reference: string,
    manifest: ImageManifest | ImageIndex,
    mediaType: ManifestMediaType,
  ): Promise<Descriptor> {
    return putManifest(
      this.#transport,
      this.#repository(repository),
      this.#reference(repository, reference),
      manifest,
      mediaType,
    );
  }

  /** The manifest's digest, or undefined when the repository has no such tag or digest. */
  statManifest(repository: string, reference: string): Promise<string | undefined> {
    return statManifest(this.#transport, this.#repository(repository), this.#reference(repository, reference));
  }

  /** A manifest or index by tag or digest. */
  getManifest(repository: string, reference: string): Promise<FetchedManifest> {
    return getManifest(this.#transport, this.#repository(repository), this.#reference(repository, reference));
  }

  /** The image manifest for `platform`, through the index when `reference` names one. */
  getImageManifest(
    repository: string,
    reference: string,
    platform: PlatformWanted,
  ): Promise<FetchedManifest & { readonly kind: "manifest" }> {
    return getImageManifest(
      this.#transport,
      this.#repository(repository),
      this.#reference(repository, reference),
      platform,
    );
  }

  #repository(name: string): string {
    if (name.length <= 255 && REPOSITORY.test(name)) return name;
    throw new RegistryError(
      "STORAGE_OPTIONS",
      `Registry ${this.registry}: ${JSON.stringify(name)} is not a repository name (lower-case letters and digits, parts joined by ".", "_", "__" or "-", path components joined by "/"; for example acme/flows).`,
      { registry: this.registry },
    );
  }

  #digest(repository: string, digest: string): string {
    if (DIGEST_PATTERN.test(digest)) return digest;
    throw new RegistryError(
      "STORAGE_OPTIONS",
      `Registry ${this.registry}, repository ${JSON.stringify(repository)}: ${JSON.stringify(digest)} is not a sha256 digest (sha256: and 64 lower-case hex digits).`,
      { registry: this.registry, repository },
    );
  }

  #reference(repository: string, reference: string): string {
    if (TAG.test(reference) || DIGEST_PATTERN.test(reference)) return reference;
    throw new RegistryError(
      "STORAGE_OPTIONS",
      `Registry ${this.registry}, repository ${JSON.stringify(repository)}: ${JSON.stringify(reference)} is neither a tag (up to 128 letters, digits, ".", "_" and "-") nor a sha256 digest.`,
      { registry: this.registry, repository },
    );
  }
}
