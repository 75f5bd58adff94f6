import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    name: "consumer",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    // Packing and the consumer's npm install happen while the suite's layer is built (a cold npm cache is slow).
    hookTimeout: 300_000
  }
})
