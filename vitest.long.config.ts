import { defineConfig } from "vitest/config";

/** `npm run test:long`: soaks that take minutes, never part of `npm test`. */
export default defineConfig({
  test: {
    // One real PostgreSQL cluster for the run (stores that processes share are tested on it too).
    globalSetup: ["test/support/postgres-global.ts"],
    include: ["test/long/**/*.test.ts"],
    testTimeout: 30 * 60_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
  },
});
