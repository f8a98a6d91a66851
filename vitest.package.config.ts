import { defineConfig } from "vitest/config";

/** `npm run test:package`: installs the packed package like a user would (slow: native builds). */
export default defineConfig({
  test: {
    include: ["test/package/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    maxWorkers: 1,
  },
});
