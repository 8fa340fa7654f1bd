import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    // Two cores: a few files at a time keeps the concurrency tests honest and the machine responsive.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ["test/support/build.ts", "test/support/services-setup.ts"],
    setupFiles: ["test/support/setup.ts"],
  },
});
