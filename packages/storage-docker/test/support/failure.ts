/** The RegistryError a promise rejects with; fails the test when it resolves or rejects otherwise. */
import { expect } from "vitest";
import { RegistryError } from "../../src/index.js";

export async function failure(promise: Promise<unknown>): Promise<RegistryError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(RegistryError);
  return error as RegistryError;
}
