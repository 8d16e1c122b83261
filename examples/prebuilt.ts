/**
 * Pre-built storage: build several flows into one storage first, register them later without
 * building again (`build: false`, the seeds' pre-built storage).
 *
 *   pnpm tern register examples/prebuilt.ts --no-build
 *
 * Loading this file builds the storage (`storage.build()` below); when tern loads the bundle to
 * run a flow, `build()` does nothing.
 */
import { Flow, LocalStorage, task } from "@tern/core";

export const storage = new LocalStorage();

const add = task("add", (a: number, b: number) => a + b);

export const first = new Flow("prebuilt-first", { storage }, () => ({ sum: add(1, 2) }));
export const second = new Flow("prebuilt-second", { storage }, () => ({ sum: add(3, 4) }));

storage.add(first);
storage.add(second);
await storage.build();
