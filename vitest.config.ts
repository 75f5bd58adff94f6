import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: [
      "packages/leasehold",
      "packages/testing",
      "packages/node-redis",
      "packages/ioredis",
      "packages/consumer-test"
    ]
  }
})
