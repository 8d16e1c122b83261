/**
 * DynamoDB Local for the benchmarks that need it, which still print a line where it cannot start
 * (no Java, no jar): the other cases of the same benchmark run on.
 */
import type { DynamoDbLocal } from "@tern/test-support/dynamodb-local";

/** Starts DynamoDB Local, or prints `skippedCase` with the reason and resolves undefined. */
export async function startDynamoDbLocalOrSkip(
  skippedCase: Record<string, unknown>,
): Promise<DynamoDbLocal | undefined> {
  try {
    const { startDynamoDbLocal } = await import("@tern/test-support/dynamodb-local");
    return await startDynamoDbLocal();
  } catch (error) {
    console.log(JSON.stringify({ ...skippedCase, skipped: (error as Error).message }));
    return undefined;
  }
}
