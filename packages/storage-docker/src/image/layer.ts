/**
 * Image layers made the same way every time: a gzipped tar whose entries are sorted by path, with
 * fixed owners (root), fixed times (the epoch) and normalized modes, so equal files give equal
 * bytes and equal digests, and an unchanged flow pushes nothing. Parent directories are written
 * before what they hold. Paths are absolute in the image (`/tern/flow/bundle.mjs`) and stored
 * without the leading slash, as image layers store them.
 */
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { promisify } from "node:util";
import { deflateRawSync, gunzip, gzip } from "node:zlib";
import { TernError } from "@tern/core";
import { extract, pack } from "tar-stream";
import { sha256Digest } from "../registry/digest.js";

/** One entry of a layer, by its absolute path in the image. */
export type LayerEntry =
  | {
      readonly kind: "file";
      readonly path: string;
      readonly content: Uint8Array;
      /** Executable bits are kept; the rest is 0644. @default 0o644 */
      readonly mode?: number;
    }
  | { readonly kind: "directory"; readonly path: string }
  | { readonly kind: "symlink"; readonly path: string; readonly target: string };

/** A layer as pushed: the gzipped tar, its digest (of the gzipped bytes) and its diff id (of the tar). */
export interface Layer {
  readonly bytes: Uint8Array;
  readonly digest: string;
  readonly diffId: string;
  readonly sizeBytes: number;
}

const EPOCH = new Date(0);
const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** A layer's uncompressed tar and its diff id: enough to plan the image's config and its tag. */
export interface TarLayer {
  readonly tar: Uint8Array;
  readonly diffId: string;
}

/** Builds a layer from entries; the same entries (in any order) give the same bytes. */
export async function buildLayer(entries: readonly LayerEntry[]): Promise<Layer> {
  return compressLayer(await tarLayer(entries));
}

/** The tar of a layer's entries (sorted, parents first) and its diff id. */
export async function tarLayer(entries: readonly LayerEntry[]): Promise<TarLayer> {
  const byPath = new Map<string, LayerEntry>();
  for (const entry of entries) {
    const path = layerPath(entry.path);
    const existing = byPath.get(path);
    if (existing !== undefined && !(existing.kind === "directory" && entry.kind === "directory")) {
      throw new TernError("STORAGE_OPTIONS", `Two entries of one image layer are at ${entry.path}: keep one.`);
    }
    byPath.set(path, entry);
    // Parents first: a tar that creates a file before its directory gets that directory's
    // mode from whichever runtime unpacks it.
    for (let at = path.lastIndexOf("/"); at > 0; at = path.lastIndexOf("/", at - 1)) {
      const parent = path.slice(0, at);
      if (!byPath.has(parent)) byPath.set(parent, { kind: "directory", path: `/${parent}` });
    }
  }
  const tar = pack();
  const chunks: Uint8Array[] = [];
  tar.on("data", (chunk: unknown) => {
    chunks.push(chunk as Uint8Array);
  });
  const written = new Promise<void>((resolve, reject) => {
    tar.on("end", () => resolve());
    tar.on("error", reject);
  });
  for (const path of [...byPath.keys()].sort()) {
    const entry = byPath.get(path) as LayerEntry;
    const common = { mtime: EPOCH, uid: 0, gid: 0, uname: "", gname: "" };
    if (entry.kind === "directory") {
      tar.entry({ ...common, name: `${path}/`, type: "directory", mode: 0o755 });
    } else if (entry.kind === "symlink") {
      tar.entry({ ...common, name: path, type: "symlink", linkname: entry.target, mode: 0o777 });
    } else {
      const mode = (entry.mode ?? 0o644) & 0o111 ? 0o755 : 0o644;
      tar.entry(
        { ...common, name: path, type: "file", mode, size: entry.content.byteLength },
        Buffer.from(entry.content.buffer, entry.content.byteOffset, entry.content.byteLength),
      );
    }
  }
  tar.finalize();
  await written;
  const tarBytes = Buffer.concat(chunks);
  return { tar: tarBytes, diffId: sha256Digest(tarBytes) };
}

/** How much of a tar is compressed first, to see whether compressing it is worth the time. */
const SAMPLE_BYTES = 256 * 1024;

/**
 * The gzipped layer. zlib's fastest level: on JavaScript it gives within 1% of the default
 * level's size in half the time. Content that does not compress (random or already compressed
 * bytes: a sample shrinks by less than 10%) is stored in gzip's uncompressed blocks, which costs
 * a copy instead of a search. The choice depends on the bytes only, and zlib's gzip header has no
 * name and a zero time, so the same tar gives the same layer (with the same zlib; the image's tag
 * is derived from the diff ids, so another zlib changes no tag).
 */
export async function compressLayer(layer: TarLayer): Promise<Layer> {
  const sample = layer.tar.subarray(0, SAMPLE_BYTES);
  const compressible =
    sample.byteLength === 0 || deflateRawSync(sample, { level: 1 }).byteLength < sample.byteLength * 0.9;
  const gzipped = new Uint8Array(await gzipAsync(layer.tar, { level: compressible ? 1 : 0 }));
  return { bytes: gzipped, digest: sha256Digest(gzipped), diffId: layer.diffId, sizeBytes: gzipped.byteLength };
}

/**
 * The regular files at `paths` (absolute image paths) in a gzipped layer; the others are skipped.
 * A path the layer does not hold is absent from the answer.
 */
export async function readLayerFiles(gzipped: Uint8Array, paths: readonly string[]): Promise<Map<string, Uint8Array>> {
  const wanted = new Map(paths.map((p) => [layerPath(p), p]));
  const found = new Map<string, Uint8Array>();
  const tar = extract();
  const reading = (async () => {
    for await (const entry of tar) {
      const name = entry.header.name.replace(/^\.?\//, "");
      const original = wanted.get(name);
      if (original !== undefined && entry.header.type === "file")
        found.set(original, new Uint8Array(await buffer(entry)));
      else entry.resume();
    }
  })();
  Readable.from([await gunzipAsync(gzipped)]).pipe(tar);
  await reading;
  return found;
}

/** `/tern/flow/a.mjs` → `tern/flow/a.mjs`; refuses relative paths and `..`. */
function layerPath(path: string): string {
  const parts = path.split("/");
  if (!path.startsWith("/") || parts.slice(1).some((p) => p === "" || p === "." || p === "..")) {
    throw new TernError(
      "STORAGE_OPTIONS",
      `${JSON.stringify(path)} is not a path in an image: give an absolute path without "." or ".." parts, such as /opt/data/model.onnx.`,
    );
  }
  return parts.slice(1).join("/");
}
