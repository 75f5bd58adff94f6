import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    name: "consumer",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    // Packing and the consumer's npm install happen while the suite's layer is built (a cold npm cache is slow).
    hookTimeout: 300_000,
    // After the other projects: packing, npm install and tsc keep both cores busy, and the suites that measure a
    // lease's deadlines against Redis's expiry should not run beside them.
    sequence: { groupOrder: 1 }
  }
})
