import { defineConfig } from "vitest/config";

// Workspace packages export their TypeScript sources under the "@tern/source" condition,
// so tests run against src/ without a build step.
export default defineConfig({
  resolve: { conditions: ["@tern/source"] },
  ssr: { resolve: { conditions: ["@tern/source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "infra/test/**/*.test.ts"],
    environment: "node",
    testTimeout: 20_000,
    pool: "forks",
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
});
