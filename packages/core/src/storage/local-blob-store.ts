import { randomUUID } from "node:crypto";
import { link, mkdir, readdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { NotFoundError, TernError } from "../errors.js";
import { type BlobHead, type BlobStore, checkKey, existingObject, type PutOptions, sha256Hex } from "./blob-store.js";

/** Temporary files of `put`: `<name>.<uuid>.tmp`. Other keys ending in `.tmp` are objects. */
const TEMP_FILE = /\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

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
    const path = this.path(key);
    try {
      return new Uint8Array(await readFile(path));
    } catch (error) {
      throw this.wrap("read", key, error);
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    const path = this.path(key);
    try {
      const info = await stat(path);
      return info.isFile() ? { sizeBytes: info.size } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.wrap("stat", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(this.directory, { recursive: true, withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw this.wrap("list", undefined, error);
    }
    return entries
      .filter((entry) => entry.isFile() && !TEMP_FILE.test(entry.name))
      .map((entry) => relative(this.directory, join(entry.parentPath, entry.name)).split(sep).join("/"))
      .filter((key) => key.startsWith(prefix))
      .sort();
  }

  async delete(key: string): Promise<void> {
    const path = this.path(key);
    try {
      await unlink(path);
    } catch (error) {
      if (!isMissing(error)) throw this.wrap("delete", key, error);
    }
  }

  private path(key: string): string {
    return join(this.directory, ...checkKey(key).split("/"));
  }

  private async compare(key: string, target: string, sha256: string): Promise<"exists"> {
    let existing: Buffer;
    try {
      existing = await readFile(target);
    } catch (error) {
      throw this.wrap("read", key, error);
    }
    return existingObject(this.describe(key), sha256Hex(existing) === sha256);
  }

  /** Wraps a file system error of an operation on `key` (or on the whole directory). */
  private wrap(operation: string, key: string | undefined, error: unknown): Error {
    const code = (error as NodeJS.ErrnoException).code;
    const url = key === undefined ? this.url : this.describe(key);
    if (key !== undefined && operation !== "write" && isMissing(error)) {
      return NotFoundError.blob(key, url, { cause: error });
    }
    if (code === "ENOTDIR") {
      return new TernError(
        "STORAGE_ACCESS",
        `Local storage: cannot ${operation} ${url} (ENOTDIR): one of its parent paths is a regular file, not a directory. ` +
          `Remove or rename that file, or give the store another directory than ${this.directory} (or set TERN_HOME).`,
        { cause: error },
      );
    }
    if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
      return new TernError(
        "STORAGE_ACCESS",
        `Local storage: cannot ${operation} ${url} (${code}). Make ${this.directory} writable, or set TERN_HOME to a writable directory.`,
        { cause: error },
      );
    }
    return new TernError("STORAGE", `Local storage: ${operation} ${url} failed: ${(error as Error).message}`, {
      cause: error,
      // Too many open files, or a file busy for a moment: the same operation may succeed later.
      retryable: code === "EMFILE" || code === "ENFILE" || code === "EBUSY" || code === "EAGAIN",
    });
  }
}

/**
 * Whether a file system error means the object is absent: no such file, or a parent path that is
 * a file (`a` stored, `a/b` asked for).
 */
function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}
