import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // One real PostgreSQL cluster for the run (stores that processes share are tested on it too).
    globalSetup: ["test/support/postgres-global.ts"],
    include: [
      "test/**/*.test.ts",
      "gateway/**/*.test.ts",
      "src/**/*.test.ts",
      "provider/**/*.test.ts",
      "tools/**/*.test.ts",
    ],
    exclude: ["test/long/**", "test/package/**", "node_modules/**", "dist/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real servers and child processes: two cores, keep parallelism modest.
    maxWorkers: 2,
  },
});
