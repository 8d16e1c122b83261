import { randomUUID } from "node:crypto";
import { link, mkdir, readdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { NotFoundError, TernError } from "../errors.js";
import {
  BlobConflictError,
  type BlobHead,
  type BlobStore,
  checkKey,
  type PutOptions,
  sha256Hex,
} from "./blob-store.js";

/** Objects as files under a directory. Writes are atomic and never replace an existing file. */
export class LocalBlobStore implements BlobStore {
  readonly url: string;

  constructor(readonly directory: string) {
    this.url = pathToFileURL(directory).href;
  }

  describe(key: string): string {
    return pathToFileURL(this.path(key)).href;
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<"created" | "exists"> {
    const target = this.path(key);
    const existing = await this.head(key);
    if (existing !== undefined) return this.compare(key, target, options.sha256);
    const temp = `${target}.${randomUUID()}.tmp`;
    try {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(temp, body, { flag: "wx" });
      // link() fails with EEXIST instead of replacing: create-if-absent, even between processes.
      await link(temp, target);
      return "created";
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return this.compare(key, target, options.sha256);
      throw this.wrap("write", key, error);
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(this.path(key)));
    } catch (error) {
      throw this.wrap("read", key, error);
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    try {
      const info = await stat(this.path(key));
      return info.isFile() ? { sizeBytes: info.size } : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") {
        return undefined;
      }
      throw this.wrap("stat", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(this.directory, { recursive: true, withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw this.wrap("list", prefix, error);
    }
    return entries
      .filter((entry) => entry.isFile() && !entry.name.endsWith(".tmp"))
      .map((entry) => relative(this.directory, join(entry.parentPath, entry.name)).split(sep).join("/"))
      .filter((key) => key.startsWith(prefix))
      .sort();
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.path(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw this.wrap("delete", key, error);
    }
  }

  private path(key: string): string {
    return join(this.directory, ...checkKey(key).split("/"));
  }

  private async compare(key: string, target: string, sha256: string): Promise<"exists"> {
    const existing = await readFile(target);
    if (sha256Hex(existing) === sha256) return "exists";
    throw new BlobConflictError(this.describe(key));
  }

  private wrap(operation: string, key: string, error: unknown): Error {
    const code = (error as NodeJS.ErrnoException).code;
    const url = this.describe(key);
    if (code === "ENOENT") return new NotFoundError("blob", key, `${url} does not exist.`, { cause: error });
    if (code === "EACCES" || code === "EPERM" || code === "EROFS" || code === "ENOTDIR") {
      return new TernError(
        "STORAGE_ACCESS",
        `Local storage: cannot ${operation} ${url} (${code}). Make ${this.directory} writable, or set TERN_HOME to a writable directory.`,
        { cause: error },
      );
    }
    return new TernError("STORAGE", `Local storage: ${operation} ${url} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
