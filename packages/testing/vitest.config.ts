import { configDefaults, defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    name: "testing",
    include: ["test/**/*.test.ts"],
    // The container path needs a container runtime: `npm run test:container` runs it (vitest.container.config.ts).
    exclude: [...configDefaults.exclude, "test/**/*.container.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
