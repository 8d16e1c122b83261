import { defineConfig } from "vitest/config";

// Workspace packages export their TypeScript sources under the "@tern/source" condition,
// so tests run against src/ without a build step.
export default defineConfig({
  resolve: { conditions: ["@tern/source"] },
  ssr: { resolve: { conditions: ["@tern/source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "infra/test/**/*.test.ts"],
    environment: "node",
    // The AWS SDK's notice about future Node versions, printed once per worker otherwise.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    testTimeout: 20_000,
    // Setup hooks start local servers and synthesize CDK apps: slower than a test on a busy machine.
    hookTimeout: 120_000,
    pool: "forks",
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
});
