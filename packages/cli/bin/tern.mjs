#!/usr/bin/env node
// Published entry point: registers tsx so that `tern register flows/etl.ts` can import
// TypeScript flow files, then runs the compiled CLI.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../dist/main.js");
process.exitCode = await main(process.argv.slice(2));
