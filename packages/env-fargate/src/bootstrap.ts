/**
 * The runner bootstrap: how a task on a stock Node image (no tern, no SDK in it) gets the runner.
 *
 * With a runner bundle configured (`runnerBundle`, `TERN_RUNNER_BUNDLE`), the task definition's
 * command is `node --input-type=module -e BOOTSTRAP` and its environment holds
 * `TERN_RUNNER_SHA256`; at every launch the agent presigns a GET of the bundle object and passes
 * it as `TERN_RUNNER_URL` in RunTask's overrides. The bootstrap downloads the bundle, refuses it
 * unless its sha256 is the one in the task definition, writes it to a fresh private file and
 * imports it, which runs `tern execute` (packages/cli/src/runner.ts).
 */

/** Exit codes of the bootstrap, each with its own one-line reason on stderr. */
export const BOOTSTRAP_EXIT = {
  /** TERN_RUNNER_URL or TERN_RUNNER_SHA256 missing or malformed (the runner's own 64 means the same for TERN_RUN_ID/TERN_BACKEND). */
  missingEnvironment: 64,
  /** The downloaded bundle's sha256 is not the task definition's. */
  integrity: 70,
  /** The bundle could not be downloaded (HTTP status or network error named). */
  download: 71,
  /** The verified bundle could not be written or imported. */
  load: 72,
} as const;

/**
 * The bootstrap program, run by `node --input-type=module -e`. It lives in every task
 * definition revision, so it stays small; it uses Node's built-ins only (global fetch: Node 18+).
 * It retries network errors, 429 and 5xx answers (5 attempts, 1 to 8 s apart; the first wait is
 * TERN_BOOTSTRAP_BACKOFF_MS when set), not other 4xx ones.
 * It never prints the URL: its query string carries a signature.
 */
export const BOOTSTRAP = `// tern runner bootstrap: fetch the runner bundle, check its sha256, import it (see @tern/env-fargate).
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
const env = process.env;
const stop = (code, why) => { console.error("tern-bootstrap: " + why); process.exit(code); };
const url = env.TERN_RUNNER_URL, want = env.TERN_RUNNER_SHA256;
delete env.TERN_RUNNER_URL;
if (!url) stop(64, "TERN_RUNNER_URL is not set: start this task through a tern agent, which passes the runner bundle's URL at launch");
if (!/^[0-9a-f]{64}$/.test(want ?? "")) stop(64, "TERN_RUNNER_SHA256 is not a sha256 (64 hex digits): register the task definition through a tern agent with TERN_RUNNER_BUNDLE_SHA256 set");
let body;
for (let attempt = 1; body === undefined; attempt++) {
  let why;
  try {
    const res = await fetch(url);
    if (res.ok) body = Buffer.from(await res.arrayBuffer());
    else {
      const text = await res.text();
      why = "HTTP " + res.status;
      if (res.status === 403 && /expired/i.test(text)) stop(71, "runner bundle download failed (HTTP 403): the launch URL expired (valid for an hour after RunTask); start a new run");
      if (res.status === 403) stop(71, "runner bundle download failed (HTTP 403): the agent's role may not read the bundle object; grant it s3:GetObject on TERN_RUNNER_BUNDLE");
      if (res.status === 404) stop(71, "runner bundle download failed (HTTP 404): the bundle object is gone; redeploy the stack");
      if (res.status < 500 && res.status !== 429) stop(71, "runner bundle download failed (" + why + ")");
    }
  } catch (e) {
    why = "network error: " + (e.cause?.code ?? e.cause?.message ?? e.message);
  }
  if (body === undefined) {
    if (attempt >= 5) stop(71, "runner bundle download failed after " + attempt + " attempts (" + why + "): check that the task's subnets reach S3 (a NAT gateway or an S3 gateway endpoint)");
    await new Promise((r) => setTimeout(r, Number(env.TERN_BOOTSTRAP_BACKOFF_MS ?? 1000) * 2 ** (attempt - 1)));
  }
}
const got = createHash("sha256").update(body).digest("hex");
if (got !== want) stop(70, "runner bundle integrity check failed: sha256 is " + got + ", expected " + want + ": the object was changed after deploy; redeploy the stack");
let file;
const base = env.TERN_HOME || tmpdir();
try {
  mkdirSync(base, { recursive: true, mode: 0o700 });
  file = join(mkdtempSync(join(base, "tern-runner-")), "runner.mjs");
  writeFileSync(file, body, { mode: 0o600, flag: "wx" });
} catch (e) {
  stop(72, "cannot write the runner bundle under " + base + " (" + e.message + "): set TERN_HOME to a writable directory");
}
try {
  await import(pathToFileURL(file).href);
} catch (e) {
  stop(72, "the runner bundle failed to load (" + String(e?.message ?? e).split("\\n")[0] + "): check the image's Node version (20 or later)");
}
`;

/** The container command that runs {@link BOOTSTRAP}. */
export function bootstrapCommand(): string[] {
  return ["node", "--input-type=module", "-e", BOOTSTRAP];
}
