#!/usr/bin/env node
// The published `tern` command. Flow files (TypeScript or JavaScript) are compiled by esbuild
// before they are imported, so no TypeScript loader is registered here.
import module from "node:module";

// Node 22.1 and later keep compiled code between runs: a faster start for every command.
module.enableCompileCache?.();
const { runCli } = await import("../dist/main.js");
await runCli(process.argv.slice(2));
