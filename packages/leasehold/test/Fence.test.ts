import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { type Context, Effect, Fiber, Layer, Option } from "effect"
import * as Redis from "effect/persistence/Redis"
import { TestClock } from "effect/testing"
import { Fence, Lease, LeaseStore } from "leasehold"
import { acquired, reasonOf } from "./support.ts"

let counter = 0
const freshResource = (label: string) => `fence-test:${label}:${++counter}`

const guarded = (guard: Fence.Guard, resource: string) => Effect.map(guard.get(resource), Option.getOrUndefined)

/** A Lease service over a Redis store on the client in `context`, for the life of the current scope. */
const leaseOver = (context: Context.Context<Redis.Redis>) =>
  LeaseStore.makeRedis().pipe(
    Effect.flatMap((store) => Lease.make.pipe(Effect.provideService(LeaseStore.LeaseStore, store))),
    Effect.provide(context)
  )

/** The rules every guard keeps, for the memory guard and the Redis guard alike. */
type Test = (name: string, self: () => Effect.Effect<void, unknown, any>) => void

const guardContract = (test: Test, makeGuard: Effect.Effect<Fence.Guard, never, any>) => {
  test("accepts rising fences and keeps the value written with the highest", () =>
    Effect.gen(function* () {
      const guard = yield* makeGuard
      const resource = freshResource("rising")
      for (const fence of [1n, 2n, 5n, 9n]) assert.isTrue(yield* guard.guardedSet(resource, fence, `v${fence}`))
      assert.deepStrictEqual(yield* guarded(guard, resource), { fence: 9n, value: "v9" })
    }))

  test("refuses a stale writer and leaves the value as it was", () =>
    Effect.gen(function* () {
      const guard = yield* makeGuard
      const resource = freshResource("stale")
      assert.isTrue(yield* guard.guardedSet(resource, 5n, "from holder 5"))
      assert.isFalse(yield* guard.guardedSet(resource, 3n, "from holder 3"))
      assert.isFalse(yield* guard.guardedSet(resource, 4n, "from holder 4"))
      assert.deepStrictEqual(yield* guarded(guard, resource), { fence: 5n, value: "from holder 5" })
    }))

  test("accepts an equal fence: the same holder writing again", () =>
    Effect.gen(function* () {
      const guard = yield* makeGuard
      const resource = freshResource("equal")
      assert.isTrue(yield* guard.guardedSet(resource, 4n, "first"))
      assert.isTrue(yield* guard.guardedSet(resource, 4n, "second"))
      assert.deepStrictEqual(yield* guarded(guard, resource), { fence: 4n, value: "second" })
    }))

  test("compares fences as numbers, exactly, beyond 2^53 and 2^64", () =>
    Effect.gen(function* () {
      const guard = yield* makeGuard
      const resource = freshResource("numeric")
      assert.isTrue(yield* guard.guardedSet(resource, 9n, "9"))
      assert.isTrue(yield* guard.guardedSet(resource, 10n, "10"), "10 > 9, though '10' < '9' as text")
      assert.isFalse(yield* guard.guardedSet(resource, 9n, "9 again"))
      const big = 2n ** 64n
      assert.isTrue(yield* guard.guardedSet(resource, big, "2^64"))
      assert.isFalse(yield* guard.guardedSet(resource, big - 1n, "2^64 - 1"))
      const beyondDoubles = 2n ** 84n + 1n
      assert.isTrue(yield* guard.guardedSet(resource, beyondDoubles, "2^84 + 1"))
      assert.isFalse(yield* guard.guardedSet(resource, 2n ** 84n, "2^84, equal to 2^84 + 1 as a double"))
      assert.deepStrictEqual(yield* guarded(guard, resource), { fence: beyondDoubles, value: "2^84 + 1" })
    }))

  test("refuses fences below 1 with InvalidOption, writing nothing", () =>
    Effect.gen(function* () {
      const guard = yield* makeGuard
      const resource = freshResource("invalid")
      for (const fence of [0n, -1n]) {
        const reason = reasonOf(yield* Effect.flip(guard.guardedSet(resource, fence, "never")))
        assert.strictEqual(reason._tag, "InvalidOption")
        assert.match(reason.message, new RegExp(`"fence": it is ${fence}; fences start at 1`))
      }
      const notABigint = reasonOf(yield* Effect.flip(guard.guardedSet(resource, 3 as never, "never")))
      assert.match(notABigint.message, /"fence": it is a number, not a bigint/)
      assert.isUndefined(yield* guarded(guard, resource))
    }))

  test("keeps each resource's highest fence apart", () =>
    Effect.gen(function* () {
      const guard = yield* makeGuard
      const [a, b] = [freshResource("apart-a"), freshResource("apart-b")]
      assert.isTrue(yield* guard.guardedSet(a, 7n, "a7"))
      assert.isTrue(yield* guard.guardedSet(b, 1n, "b1"))
      assert.deepStrictEqual(yield* guarded(guard, b), { fence: 1n, value: "b1" })
    }))
}

describe("Fence.makeMemoryGuard", () => guardContract((name, self) => it.effect(name, self), Fence.makeMemoryGuard))

const TestLayer = Layer.fresh(Lease.layer).pipe(
  Layer.provideMerge(LeaseStore.layerRedis()),
  Layer.provideMerge(RedisTestServer.layer)
)

layer(TestLayer, { excludeTestServices: true })("Fence on Redis", (it) => {
  guardContract((name, self) => it.effect(name, self), Fence.makeRedisGuard())

  it.effect("keeps the fence beside the value in one hash at the resource's own key", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const resource = freshResource("layout")
      assert.isTrue(yield* Fence.guardedSet(resource, 12n, "payload"))
      assert.deepStrictEqual(yield* redis.send("HGETALL", resource), { fence: "12", value: "payload" })
      assert.deepStrictEqual(Option.getOrUndefined(yield* Fence.get(resource)), { fence: 12n, value: "payload" })
      assert.isTrue(Option.isNone(yield* Fence.get(freshResource("never-written"))))
    })
  )

  it.effect("script-like resources and values are plain data", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      yield* redis.send("SET", "fence-sentinel", "still-here")
      const resource = `${freshResource("inject")}"]]) redis.call("FLUSHALL") --[[`
      const value = `"); redis.call("DEL", "fence-sentinel"); return 1 --]]..redis.call('FLUSHALL')..[[`
      assert.isTrue(yield* Fence.guardedSet(resource, 2n, value))
      assert.isFalse(yield* Fence.guardedSet(resource, 1n, "stale"))
      assert.deepStrictEqual(Option.getOrUndefined(yield* Fence.get(resource)), { fence: 2n, value })
      assert.strictEqual(yield* redis.send<string>("GET", "fence-sentinel"), "still-here")
    })
  )

  it.effect("a resource key that is not a guarded hash: StoreUnavailable, and it is left as it was", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const text = freshResource("wrong-type")
      yield* redis.send("SET", text, "a plain string")
      const wrongType = reasonOf(yield* Effect.flip(Fence.guardedSet(text, 1n, "v")))
      assert.strictEqual(wrongType._tag, "StoreUnavailable")
      assert.match(wrongType.message, /during guardedSet of .*WRONGTYPE/)
      assert.strictEqual(yield* redis.send<string>("GET", text), "a plain string")

      const garbled = freshResource("garbled-fence")
      yield* redis.send("HSET", garbled, "fence", "twelve", "value", "v")
      const notAFence = reasonOf(yield* Effect.flip(Fence.guardedSet(garbled, 13n, "v13")))
      assert.strictEqual(notAFence._tag, "StoreUnavailable")
      assert.match(notAFence.message, /fence field of the guarded hash is not a positive integer/)
      assert.strictEqual(reasonOf(yield* Effect.flip(Fence.get(garbled)))._tag, "StoreUnavailable")
      assert.strictEqual(yield* redis.send<string>("HGET", garbled, "value"), "v")
    })
  )

  it.effect("a holder that lost its lease cannot overwrite the next holder's write", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const context = yield* Effect.context<Redis.Redis>()
        const [first, second] = [yield* leaseOver(context), yield* leaseOver(context)]
        const key = freshResource("e2e-lease")
        const resource = freshResource("e2e-resource")
        const old = acquired(yield* first.acquire(key, 150))
        assert.isTrue(yield* Fence.guardedSet(resource, old.fence, "written by the first holder"))
        // The first holder stalls past its TTL (the thing under test: its lease runs out in Redis).
        yield* Effect.sleep(200)
        const next = acquired(yield* second.acquire(key, "10 seconds"))
        assert.isTrue(next.fence > old.fence, `fence ${next.fence} after ${old.fence}`)
        assert.isTrue(yield* Fence.guardedSet(resource, next.fence, "written by the second holder"))
        // The first holder wakes up, unaware, and writes with its old fence: refused.
        assert.isFalse(yield* Fence.guardedSet(resource, old.fence, "late write by the first holder"))
        assert.isFalse(yield* first.checkOwnership(old))
        assert.deepStrictEqual(Option.getOrUndefined(yield* Fence.get(resource)), {
          fence: next.fence,
          value: "written by the second holder"
        })
        assert.isTrue(yield* second.release(next))
      })
    )
  )

  it.effect("fences rise strictly across many holders on several clients, and each older one is refused", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { url } = yield* RedisTestServer.RedisTestServer
        const clients: Array<Lease.Lease["Service"]> = []
        for (let i = 0; i < 3; i++) {
          const connection = yield* Layer.build(NodeRedis.layer({ url, disableOfflineQueue: true }))
          clients.push(yield* leaseOver(connection))
        }
        const key = freshResource("many-lease")
        const resource = freshResource("many-resource")
        const fences: Array<bigint> = []
        for (let holder = 0; holder < 40; holder++) {
          const client = clients[holder % clients.length]!
          const expires = holder % 8 === 7
          const lease = acquired(yield* client.acquire(key, expires ? 20 : 10_000))
          fences.push(lease.fence)
          assert.isTrue(yield* Fence.guardedSet(resource, lease.fence, `holder ${holder}`))
          // Most holders release; every eighth lets its lease expire in Redis instead.
          if (expires) yield* Effect.sleep(40)
          else assert.isTrue(yield* client.release(lease))
        }
        for (let i = 1; i < fences.length; i++) assert.strictEqual(fences[i], fences[i - 1]! + 1n)
        for (const stale of fences.slice(0, -1)) assert.isFalse(yield* Fence.guardedSet(resource, stale, "stale"))
        assert.deepStrictEqual(Option.getOrUndefined(yield* Fence.get(resource)), {
          fence: fences.at(-1)!,
          value: "holder 39"
        })
      })
    )
  )

  it.effect("a Redis that never answers: StoreUnavailable after the command timeout", () =>
    Effect.gen(function* () {
      const silent = yield* Redis.make({
        send: () => Effect.never,
        subscribe: () => Effect.never,
        connect: Effect.never
      })
      const guard = yield* Fence.makeRedisGuard({ commandTimeout: "100 millis" }).pipe(
        Effect.provideService(Redis.Redis, silent)
      )
      const write = yield* Effect.forkChild(Effect.flip(guard.guardedSet(freshResource("silent"), 1n, "v")))
      const read = yield* Effect.forkChild(Effect.flip(guard.get(freshResource("silent"))))
      yield* TestClock.adjust(99)
      assert.isUndefined(write.pollUnsafe())
      yield* TestClock.adjust(1)
      const failures = [
        { operation: "guardedSet", error: yield* Fiber.join(write) },
        { operation: "get", error: yield* Fiber.join(read) }
      ]
      for (const { operation, error } of failures) {
        const reason = reasonOf(error)
        assert.strictEqual(reason._tag, "StoreUnavailable")
        assert.match(
          reason.message,
          new RegExp(`during ${operation} of .*: no reply from Redis within 100`),
          reason.message
        )
      }
    }).pipe(Effect.provide(TestClock.layer()))
  )
})

// ---------------------------------------------------------------------------------------------------------------
// A restart of the Redis that holds the fence counters needs a server of our own, with or without persistence.
// ---------------------------------------------------------------------------------------------------------------

const freePort = Effect.callback<number, Error>((resume) => {
  const server = net.createServer()
  server.once("error", (error) => resume(Effect.fail(error)))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    server.close(() =>
      typeof address === "object" && address !== null
        ? resume(Effect.succeed(address.port))
        : resume(Effect.fail(new Error("no port")))
    )
  })
})

const exited = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

/**
 * Runs `redis-server` on `port` with its data in `dir` (AOF with fsync on every write when `persistent`, nothing
 * saved otherwise) for the life of the scope; stops it with SIGTERM (SIGKILL after 5 s) and waits for the exit.
 */
const redisServer = (port: number, dir: string, persistent: boolean) =>
  Effect.acquireRelease(
    Effect.callback<ChildProcess, Error>((resume) => {
      const persistence = persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]
      const child = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", ...persistence],
        { stdio: ["ignore", "pipe", "pipe"] }
      )
      let output = ""
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk
        if (output.includes("Ready to accept connections")) resume(Effect.succeed(child))
      })
      child.stderr.resume()
      child.once("error", (error) => resume(Effect.fail(error)))
      child.once("exit", () => resume(Effect.fail(new Error(`redis-server exited before it was ready:\n${output}`))))
    }).pipe(Effect.timeout("10 seconds")),
    (child) =>
      Effect.sync(() => child.kill("SIGTERM")).pipe(
        Effect.andThen(exited(child)),
        Effect.timeoutOrElse({
          duration: "5 seconds",
          orElse: () => Effect.sync(() => child.kill("SIGKILL")).pipe(Effect.andThen(exited(child)))
        })
      )
  )

describe.skipIf(process.env.REDIS_URL !== undefined)("Fences across a restart of the Redis that counts them", () => {
  it.live(
    "with AOF they keep rising; without persistence they restart at 1, the guard refuses, an epoch recovers",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          // The protected resource lives in a Redis of its own, which stays up the whole time.
          const guardRedis = yield* Layer.build(RedisTestServer.layer)
          const guard = yield* Fence.makeRedisGuard().pipe(Effect.provide(guardRedis))
          const resource = freshResource("restart")

          const port = yield* freePort
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), "leasehold-fence-"))
          yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))

          /** One life of the lease Redis: start it, take `holders` leases one after another, stop it. */
          const life = (persistent: boolean, holders: number, fenceOf: (fence: bigint) => bigint = (f) => f) =>
            Effect.scoped(
              Effect.gen(function* () {
                yield* redisServer(port, dir, persistent)
                const client = yield* Layer.build(
                  NodeRedis.layer({ url: `redis://127.0.0.1:${port}`, disableOfflineQueue: true })
                )
                const lease = yield* leaseOver(client)
                const results: Array<{ readonly fence: bigint; readonly applied: boolean }> = []
                for (let i = 0; i < holders; i++) {
                  const held = acquired(yield* lease.acquire("jobs:restart", "10 seconds"))
                  const applied = yield* guard.guardedSet(resource, fenceOf(held.fence), `fence ${held.fence}`)
                  results.push({ fence: held.fence, applied })
                  assert.isTrue(yield* lease.release(held))
                }
                return results
              })
            )

          assert.deepStrictEqual(yield* life(true, 3), [
            { fence: 1n, applied: true },
            { fence: 2n, applied: true },
            { fence: 3n, applied: true }
          ])
          // Restarted from its AOF, the counter goes on where it stopped.
          assert.deepStrictEqual(yield* life(true, 2), [
            { fence: 4n, applied: true },
            { fence: 5n, applied: true }
          ])
          // Restarted without its data: fences restart at 1 and the guard, which remembers 5, refuses every holder.
          fs.rmSync(path.join(dir, "appendonlydir"), { recursive: true, force: true })
          assert.deepStrictEqual(yield* life(false, 2), [
            { fence: 1n, applied: false },
            { fence: 2n, applied: false }
          ])
          assert.deepStrictEqual(Option.getOrUndefined(yield* guard.get(resource)), { fence: 5n, value: "fence 5" })
          // The recovery of docs/fencing.md: an epoch, raised after the loss, in the fence's high bits.
          const epoch = (n: bigint) => (fence: bigint) => (n << 64n) + fence
          const recovered = yield* life(false, 2, epoch(1n))
          assert.deepStrictEqual(recovered, [
            { fence: 1n, applied: true },
            { fence: 2n, applied: true }
          ])
          assert.isFalse(yield* guard.guardedSet(resource, 5n, "a holder of epoch 0"))
          assert.deepStrictEqual(Option.getOrUndefined(yield* guard.get(resource)), {
            fence: (1n << 64n) + 2n,
            value: "fence 2"
          })
        })
      ),
    30_000
  )
})
