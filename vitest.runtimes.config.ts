import { defineConfig } from "vitest/config";

// `npm run test:runtimes`: the black-box HTTP suite against Node, Bun, Deno and workerd, one runtime at a time.
export default defineConfig({
  test: {
    include: ["test/runtimes/**/*.spec.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ["test/support/build.ts", "test/support/services-setup.ts"],
    setupFiles: ["test/support/setup.ts"],
  },
});
