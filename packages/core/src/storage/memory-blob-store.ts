import { NotFoundError } from "../errors.js";
import { type BlobHead, type BlobStore, checkKey, existingObject, type PutOptions, sha256Hex } from "./blob-store.js";

const stores = new Map<string, Map<string, Uint8Array>>();

/**
 * Objects in this process's memory, for tests. Stores with the same `name` share their objects,
 * so a storage rebuilt from JSON in the same process sees what was written.
 */
export class MemoryBlobStore implements BlobStore {
  readonly url: string;
  private readonly objects: Map<string, Uint8Array>;

  constructor(name = "default") {
    this.url = `memory://${name}`;
    let objects = stores.get(name);
    if (objects === undefined) {
      objects = new Map();
      stores.set(name, objects);
    }
    this.objects = objects;
  }

  describe(key: string): string {
    return `${this.url}/${key}`;
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<"created" | "exists"> {
    checkKey(key);
    const existing = this.objects.get(key);
    if (existing !== undefined) return existingObject(this.describe(key), sha256Hex(existing) === options.sha256);
    this.objects.set(key, Uint8Array.from(body));
    return "created";
  }

  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    const body = this.objects.get(key);
    if (body === undefined) throw NotFoundError.blob(key, this.describe(key));
    return Uint8Array.from(body);
  }

  async head(key: string): Promise<BlobHead | undefined> {
    checkKey(key);
    const body = this.objects.get(key);
    return body === undefined ? undefined : { sizeBytes: body.byteLength };
  }

  async list(prefix: string): Promise<string[]> {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    this.objects.delete(key);
  }
}
