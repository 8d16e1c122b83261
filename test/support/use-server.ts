/**
 * The setup of the CLI tests against a local server (s3rver, azurite, the Cloud Storage emulator,
 * DynamoDB Local): the server and a throwaway TERN_HOME for one describe block.
 */
import { afterAll, beforeAll } from "vitest";
import { type TernHome, ternHome } from "./cli.js";

/** What {@link useServerAndHome} holds: set by the time the block's tests run. */
export interface ServerAndHome<S> {
  readonly server: S;
  readonly t: TernHome;
}

/**
 * In a describe block: starts the server with `start` and makes a TERN_HOME before its tests,
 * stops and removes them after (what did start, if starting failed halfway).
 */
export function useServerAndHome<S extends { stop(): Promise<void> }>(start: () => Promise<S>): ServerAndHome<S> {
  const state: { server?: S; t?: TernHome } = {};
  beforeAll(async () => {
    state.server = await start();
    state.t = await ternHome();
  }, 60_000);
  afterAll(async () => {
    await state.server?.stop();
    await state.t?.cleanup();
  });
  return state as ServerAndHome<S>;
}
