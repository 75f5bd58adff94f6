import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, layer } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Effect, Layer } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseStore } from "leasehold"
import { type Program, readmePrograms, repoRoot, withRedisUrl } from "../../../scripts/readme-programs.ts"

/** What a program did: its exit code and everything it wrote. */
interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const programs = readmePrograms()

const programNamed = (name: string): Program => {
  const found = programs.find((program) => program.name === name)
  if (found === undefined) throw new Error(`README.md has no program under a heading that makes "${name}"`)
  return found
}

/**
 * A folder for the programs inside the leasehold package, where `leasehold` (the package's own name), `effect`,
 * `@effect/platform-node` and `redis` resolve as in a user's project; removed with the scope.
 */
const programFolder = Effect.acquireRelease(
  Effect.sync(() => {
    const parent = join(repoRoot, "packages", "leasehold", ".tmp")
    mkdirSync(parent, { recursive: true })
    return mkdtempSync(join(parent, "readme-"))
  }),
  (folder) => Effect.sync(() => rmSync(folder, { recursive: true, force: true }))
)

/** Runs a README program, pointed at `url`, with this process's Node (24: it runs TypeScript as it is). */
const runProgram = (program: Program, url: string) =>
  Effect.gen(function* () {
    const folder = yield* programFolder
    const file = join(folder, `${program.name}.ts`)
    writeFileSync(file, withRedisUrl(program, url))
    return yield* Effect.callback<Run>((resume) => {
      const child = execFile(
        process.execPath,
        [file],
        { cwd: folder, timeout: 30_000, killSignal: "SIGKILL" },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
          resume(Effect.succeed({ code, stdout, stderr }))
        }
      )
      return Effect.sync(() => child.kill("SIGKILL"))
    })
  }).pipe(Effect.scoped)

/** Fails with everything the program wrote unless it exited with 0. */
const assertSucceeded = (run: Run) =>
  assert.strictEqual(run.code, 0, `exit code ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`)

/** The fence counter of `key` in Redis (leasehold's layout, prefix `lease:`): how many times it was acquired. */
const fenceOf = (key: string) =>
  Effect.gen(function* () {
    const redis = yield* Redis.Redis
    return yield* redis.send<string | null>("GET", LeaseStore.redisKeys("lease:", key).fence)
  })

/** Whether `key` is held in Redis now (1) or not (0). */
const isHeld = (key: string) =>
  Effect.gen(function* () {
    const redis = yield* Redis.Redis
    return yield* redis.send<number>("EXISTS", LeaseStore.redisKeys("lease:", key).lease)
  })

const TestLayer = Layer.fresh(Lease.layer).pipe(
  Layer.provideMerge(LeaseStore.layerRedis({ prefix: "lease:" })),
  Layer.provideMerge(RedisTestServer.layer)
)

layer(TestLayer, { excludeTestServices: true, timeout: 60_000 })("README programs on a real Redis", (it) => {
  it("are the three this file runs (a new one must be added here)", () => {
    assert.deepStrictEqual(
      programs.map((program) => program.name),
      ["the-shortest-effect-program", "the-shortest-promise-program", "skip-the-run-when-the-key-is-busy"]
    )
  })

  it.effect(
    "the shortest Effect program runs the nightly job under a lease from Redis, and releases it",
    () =>
      Effect.gen(function* () {
        const { url } = yield* RedisTestServer.RedisTestServer
        yield* RedisTestServer.flushAll
        const run = yield* runProgram(programNamed("the-shortest-effect-program"), url)
        assertSucceeded(run)
        assert.match(run.stdout, /INFO .*running the nightly job as holder 1\n/)
        assert.strictEqual(yield* fenceOf("jobs:nightly"), "1")
        assert.strictEqual(yield* isHeld("jobs:nightly"), 0)
      }),
    60_000
  )

  it.effect(
    "the shortest Promise program prints what its job returned, and releases the lease",
    () =>
      Effect.gen(function* () {
        const { url } = yield* RedisTestServer.RedisTestServer
        yield* RedisTestServer.flushAll
        const run = yield* runProgram(programNamed("the-shortest-promise-program"), url)
        assertSucceeded(run)
        assert.strictEqual(run.stdout, "nightly job done\n")
        assert.strictEqual(yield* fenceOf("jobs:nightly"), "1")
        assert.strictEqual(yield* isHeld("jobs:nightly"), 0)
      }),
    60_000
  )

  it.effect(
    "skip-if-busy runs the job when the key is free",
    () =>
      Effect.gen(function* () {
        const { url } = yield* RedisTestServer.RedisTestServer
        yield* RedisTestServer.flushAll
        const run = yield* runProgram(programNamed("skip-the-run-when-the-key-is-busy"), url)
        assertSucceeded(run)
        assert.match(run.stdout, /INFO .*running the nightly job\n/)
        assert.notMatch(run.stdout, /skipped/)
        assert.strictEqual(yield* fenceOf("jobs:nightly"), "1")
      }),
    60_000
  )

  it.effect(
    "skip-if-busy skips at once when another holder has the key, and says who holds it",
    () =>
      Effect.gen(function* () {
        const { url } = yield* RedisTestServer.RedisTestServer
        yield* RedisTestServer.flushAll
        yield* Lease.hold("jobs:nightly", "30 seconds", { owner: { id: "replica-a" } })
        const run = yield* runProgram(programNamed("skip-the-run-when-the-key-is-busy"), url)
        assertSucceeded(run)
        assert.include(
          run.stdout,
          'skipped: The lease on "jobs:nightly" is held by holder "replica-a" (tried once, wait: 0).'
        )
        assert.notMatch(run.stdout, /running the nightly job/)
        assert.strictEqual(yield* fenceOf("jobs:nightly"), "1")
      }).pipe(Effect.scoped),
    60_000
  )
})
