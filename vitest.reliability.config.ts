import { defineConfig } from "vitest/config";

/**
 * `npm run test:reliability` (through test/reliability/run.ts): the reliability suite alone, one
 * file at a time so the soak's figures are not shared with other load. Sizes come from
 * CUSTODIA_RELIABILITY=full|short and the CUSTODIA_REL_* variables (test/reliability/config.ts).
 */
export default defineConfig({
  test: {
    include: ["test/reliability/**/*.test.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
  },
});
