#!/usr/bin/env node
// Published entry point: registers tsx so that `tern register flows/etl.ts` can import
// TypeScript flow files, then runs the compiled CLI.
import { register } from "tsx/esm/api";

register();
// ../dist/main.js runs the command itself when it is the entry point; here it is imported, so
// run it the same way: commands that run user code exit when done.
const { main } = await import("../dist/main.js");
const argv = process.argv.slice(2);
const exitWhenDone = argv[0] === "execute" || argv[0] === "deploy";
if (exitWhenDone) {
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});
}
const code = await main(argv);
if (exitWhenDone) process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
else process.exitCode = code;
