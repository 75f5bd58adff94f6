import { defineConfig } from "vitest/config"

/** The container path of RedisTestServer alone: `npm run test:container` sets up the runtime and image first. */
export default defineConfig({
  test: {
    name: "testing-container",
    root: import.meta.dirname,
    include: ["test/**/*.container.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 90_000
  }
})
