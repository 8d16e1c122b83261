import { access } from "node:fs/promises";
import { resolve } from "node:path";
import type { Flow, RegisterResult, Storage } from "@tern/core";
import { BundleError, checkLabels, flowExports, type PlannedFlow } from "@tern/core/plugin";
import {
  defaultStorage,
  defaultStorageOptionsFromText,
  type GitCheckout,
  importFlowFile,
  readGitCheckout,
  requireCleanCheckout,
} from "@tern/core/runtime";
import { type Command, printJson, projectOption, splitLabels, UsageError } from "../cli.js";

export const registerCommand: Command = {
  name: "register",
  help: `
Usage: tern register <files...> [--project P] [--labels a,b] [--storage-option k=v]... [--no-build]
                     [--require-clean] [--json]

Bundles every flow exported by each file, uploads bundle and manifest to the flow's storage
(LocalStorage under TERN_HOME by default) and records a flow version. A flow whose manifest is
unchanged records no version (status "unchanged") and uploads nothing.

A flow file inside a Git checkout gives a new version its source: the origin remote's URL
(without credentials), the commit (HEAD), the file's path in the checkout, and whether the
checkout was dirty (changed, staged or untracked files; ignored ones do not count). "tern flows"
and "tern runs show" print it. An unchanged flow keeps its version and that version's source.

Options:
  --project P   project to register into (default: TERN_PROJECT, else "default")
  --labels a,b  labels added to each flow's environment labels
  --storage-option k=v
                an option of the default storage, for flows that have no storage of their
                own (directory=/var/lib/tern; bucket=my-flows with TERN_DEFAULT_STORAGE=S3Storage);
                v is parsed as the storage expects (conditionalWrites=false, external=a,b)
  --no-build    register builds made beforehand by storage.build(): in the file itself, or
                in an earlier step that shares the storage (found in the storage, verified)
  --require-clean
                refuse, registering nothing, when a flow file's Git checkout is dirty
                (exit 1); a file outside any checkout is registered, without a source
  --json        print [{ "name", "project", "version", "status", "hash", "location",
                "bytesUploaded", "source"? }]`,
  options: {
    project: { type: "string" },
    labels: { type: "string" },
    "storage-option": { type: "string", multiple: true },
    build: { type: "boolean", default: true },
    "require-clean": { type: "boolean" },
    json: { type: "boolean" },
  },
  positionals: [1, Number.POSITIVE_INFINITY],
  async run(args, { io, backend }) {
    const project = projectOption(args.values.project);
    const labels = splitLabels(args.values.labels as string | undefined);
    if (labels !== undefined) checkLabels(labels, "--labels");
    const build = args.values.build !== false;
    const files = args.positionals.map((f) => resolve(f));
    for (const file of files) {
      try {
        await access(file);
      } catch {
        throw new UsageError("register", `file ${file} does not exist`);
      }
    }
    // Load every file and check its flows before registering anything, so that a bad file
    // leaves storage and backend as they were.
    const flows: Array<{ file: string; flow: Flow }> = [];
    for (const file of files) {
      const exports = await importFlowFile(file);
      for (const { flow } of flowExports(exports, file)) {
        const clash = flows.find((f) => f.flow.name === flow.name);
        if (clash !== undefined) {
          throw new BundleError(
            `Flow "${flow.name}" is exported by both ${clash.file} and ${file}; flow names must be unique.`,
          );
        }
        flows.push({ file, flow });
      }
    }
    // Each flow file's checkout, read once per file, and refused when dirty before anything is written.
    const checkouts = new Map<string, GitCheckout | undefined>();
    for (const { file, flow } of flows) {
      const source = flow.sourceFile ?? file;
      if (!checkouts.has(source)) checkouts.set(source, await readGitCheckout(source));
      if (args.values["require-clean"] === true) requireCleanCheckout(flow.name, checkouts.get(source));
    }
    const storageOptions = await defaultStorageOptionsFromText((args.values["storage-option"] as string[]) ?? []);
    const own = flows.find(({ flow }) => flow.storage !== undefined);
    if (Object.keys(storageOptions).length > 0 && own !== undefined) {
      throw new UsageError(
        "register",
        `--storage-option configures the default storage, but flow "${own.flow.name}" (${own.file}) has its own storage. Register it without --storage-option, or configure its storage in the file.`,
      );
    }
    // Open the backend first: an unusable TERN_HOME fails before anything is written.
    const db = await backend();
    // Plan every flow (bundle, import, check) before writing anything, then upload, then record
    // the versions. What this command uploaded is removed again if a later step fails.
    const shared = await defaultStorage(storageOptions);
    const storageOf = (flow: Flow) => (flow.storage as Storage | undefined) ?? shared;
    const bundleBytes = new Map<string, number>();
    const created: Array<{ storage: Storage; key: string }> = [];
    const results: RegisterResult[] = [];
    try {
      if (build) {
        const plans: Array<{ storage: Storage; plan: PlannedFlow }> = [];
        for (const { flow } of flows) {
          if (args.values.json !== true) io.err(`building flow "${flow.name}"...\n`);
          const storage = storageOf(flow);
          storage.add(flow);
          for (const plan of await storage.plan({ only: [flow.name] })) plans.push({ storage, plan });
        }
        for (const { storage, plan } of plans) {
          const [built] = await storage.upload([plan]);
          const bytes = built?.bytesUploaded ?? 0;
          bundleBytes.set(plan.name, bytes);
          if (bytes > 0) created.push({ storage, key: plan.manifest.bundle.key });
        }
      }
      for (const { file, flow } of flows) {
        const result = await flow.register(project, {
          build: false,
          backend: db,
          storage: shared,
          source: checkouts.get(flow.sourceFile ?? file)?.source ?? false,
          ...(labels === undefined ? {} : { labels }),
        });
        results.push(result);
        // A recorded version needs its bundle and manifest: they are not this command's to remove.
        const bundleKey = storageOf(flow).built(flow.name)?.manifest.bundle.key;
        for (let i = created.length - 1; i >= 0; i--) {
          if (created[i]?.key === bundleKey) created.splice(i, 1);
        }
        if (args.values.json !== true) {
          io.out(
            `${result.status === "new" ? "registered" : "unchanged "} ${result.name} v${result.version}  ${result.hash.slice(0, 12)}  ${result.bytesUploaded + (bundleBytes.get(result.name) ?? 0)} bytes uploaded\n`,
          );
        }
      }
    } catch (error) {
      for (const { storage, key } of created) await storage.blobs.delete(key).catch(() => undefined);
      if (results.length > 0) {
        io.err(
          `note: ${results.map((r) => `"${r.name}" v${r.version}`).join(", ")} ${results.length === 1 ? "was" : "were"} recorded before the failure and ${results.length === 1 ? "stays" : "stay"} registered.\n`,
        );
      }
      throw error;
    }
    if (args.values.json === true) {
      printJson(
        io,
        results.map(({ name, project, version, status, hash, location, bytesUploaded, source }) => ({
          name,
          project,
          version,
          status,
          hash,
          location,
          bytesUploaded: bytesUploaded + (bundleBytes.get(name) ?? 0),
          ...(source === undefined ? {} : { source }),
        })),
      );
    }
    return 0;
  },
};
