import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Clock, Context, Deferred, Effect, Exit, Layer, Option, Queue, Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseStore } from "leasehold"
import { acquired, reasonOf } from "./support.ts"

let counter = 0
const freshKey = (label: string) => `redis-test:${label}:${++counter}`

/** A Lease service over a Redis store built on the Redis client in `context`. */
const leaseOver = (context: Context.Context<Redis.Redis>, options?: LeaseStore.RedisOptions) =>
  LeaseStore.makeRedis(options).pipe(
    Effect.flatMap((store) => Lease.make.pipe(Effect.provideService(LeaseStore.LeaseStore, store))),
    Effect.provide(context)
  )

/** Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`. */
const commandCounts = Effect.gen(function* () {
  const redis = yield* Redis.Redis
  const info = yield* redis.send<string>("INFO", "commandstats")
  const counts: Record<string, number> = {}
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts[match[1]!] = Number(match[2])
  return counts
})

const TestLayer = Layer.fresh(Lease.layer).pipe(
  Layer.provideMerge(LeaseStore.layerRedis()),
  Layer.provideMerge(RedisTestServer.layer)
)

layer(TestLayer, { excludeTestServices: true })("Redis store", (it) => {
  it.effect("keeps a lease in one hash under a hash tag, its fence beside it, its TTL in Redis", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const key = freshKey("layout")
      const lease = acquired(yield* Lease.acquire(key, "10 seconds", { owner: { id: "worker-1" } }))
      const keys = LeaseStore.redisKeys("lease:", key)
      assert.strictEqual(keys.lease, `lease:{${key}}`)
      assert.strictEqual(keys.fence, `lease:{${key}}:fence`)
      const field = (name: string) => redis.send<string | null>("HGET", keys.lease, name)
      const hash = {
        token: yield* field("token"),
        fence: yield* field("fence"),
        owner: yield* field("owner"),
        acquiredAt: yield* field("acquiredAt")
      }
      assert.strictEqual(hash.token, lease.token)
      assert.strictEqual(hash.fence, "1")
      assert.strictEqual(hash.owner, JSON.stringify({ id: "worker-1" }))
      assert.strictEqual(Number(hash.acquiredAt), lease.acquiredAt.getTime())
      assert.isTrue(Math.abs(lease.acquiredAt.getTime() - Date.now()) < 5_000)
      assert.strictEqual(yield* redis.send<string>("GET", keys.fence), "1")
      const pttl = yield* redis.send<number>("PTTL", keys.lease)
      assert.isTrue(pttl > 9_000 && pttl <= 10_000, `PTTL ${pttl}`)
      assert.strictEqual(yield* redis.send<number>("PTTL", keys.fence), -1, "the fence counter outlives leases")
    })
  )

  it.effect("every operation is one round trip: one EVALSHA and nothing else", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const key = freshKey("round-trips")
      const warm = acquired(yield* Lease.acquire(key, "10 seconds"))
      yield* Lease.renew(warm)
      yield* Lease.checkOwnership(warm)
      yield* Lease.inspect(key)
      yield* Lease.release(warm)
      yield* redis.send("CONFIG", "RESETSTAT")
      const lease = acquired(yield* Lease.acquire(key, "10 seconds"))
      const contended = yield* Lease.acquire(key, "10 seconds")
      assert.strictEqual(contended._tag, "Held")
      assert.isTrue(Option.isSome(yield* Lease.renew(lease)))
      assert.isTrue(yield* Lease.checkOwnership(lease))
      assert.isTrue(Option.isSome(yield* Lease.inspect(key)))
      assert.isTrue(yield* Lease.release(lease))
      // Redis counts the commands a script runs too; the client sent only the six EVALSHA (no EVAL, no SCRIPT LOAD).
      const { evalsha, ...others } = yield* commandCounts
      assert.strictEqual(evalsha, 6)
      const scriptCommands = [
        "exists",
        "pttl",
        "hget",
        "incr",
        "get",
        "time",
        "hset",
        "pexpire",
        "del",
        "publish",
        "hmget"
      ]
      assert.deepStrictEqual(
        Object.keys(others).filter((name) => !scriptCommands.includes(name)),
        ["config|resetstat"]
      )
    })
  )

  it.effect("renewMany renews a batch of leases in one EVALSHA; without batching, one each", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const store = yield* LeaseStore.LeaseStore
      const leases = []
      for (let i = 0; i < 3; i++) leases.push(acquired(yield* Lease.acquire(freshKey("batch"), "10 seconds")))
      const requests = leases.map((lease) => ({ key: lease.key, token: lease.token, ttlMillis: 30_000 }))
      yield* redis.send("CONFIG", "RESETSTAT")
      assert.deepStrictEqual(yield* store.renewMany(requests), ["renewed", "renewed", "renewed"])
      assert.strictEqual((yield* commandCounts).evalsha, 1)
      const unbatched = yield* LeaseStore.makeRedis({ batchRenewals: false })
      yield* redis.send("CONFIG", "RESETSTAT")
      assert.deepStrictEqual(yield* unbatched.renewMany(requests), ["renewed", "renewed", "renewed"])
      assert.strictEqual((yield* commandCounts).evalsha, 3)
      for (const lease of leases) assert.isTrue((yield* redis.send<number>("PTTL", `lease:{${lease.key}}`)) > 29_000)
    })
  )

  it.effect("a release announces the key on the release channel", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const redis = yield* Redis.Redis
        const key = freshKey("announce")
        const messages = yield* redis.subscribe(LeaseStore.releaseChannel("lease:"))
        const lease = acquired(yield* Lease.acquire(key, "10 seconds"))
        assert.isFalse(yield* Lease.release(new Lease.Handle({ ...lease, token: "not-the-owner-token" as never })))
        assert.isTrue(yield* Lease.release(lease))
        const message = yield* Queue.take(messages).pipe(Effect.timeout("5 seconds"))
        assert.deepStrictEqual(message, { channel: "lease:released", message: `${lease.fence}:${key}` })
      })
    )
  )

  it.effect("user data reaches Lua only as KEYS and ARGV: script-like keys and owners are plain data", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      yield* redis.send("SET", "sentinel", "still-here")
      const key = `${freshKey("inject")}"]]) redis.call("FLUSHALL") --[[`
      const owner = { id: `"); redis.call("FLUSHALL"); ("`, labels: { lua: "]]..redis.call('DEL','sentinel')..[[" } }
      const lease = acquired(yield* Lease.acquire(key, "10 seconds", { owner }))
      assert.deepStrictEqual(Option.getOrUndefined(Option.getOrThrow(yield* Lease.inspect(key)).owner), owner)
      assert.isTrue(yield* Lease.release(lease))
      assert.strictEqual(yield* redis.send<string>("GET", "sentinel"), "still-here")
    })
  )

  it.effect("auto-renew keeps a 150 ms lease for 600 ms, one renew per TTL/3", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const key = freshKey("auto-renew")
      yield* redis.send("CONFIG", "RESETSTAT")
      const owned = yield* Lease.withLease(key, 150, (active) =>
        Effect.gen(function* () {
          yield* Effect.sleep(600)
          return yield* Lease.checkOwnership(yield* active.current)
        })
      )
      assert.isTrue(owned)
      const evals = (yield* commandCounts).evalsha ?? 0
      // acquire + 600 / 50 renews (11 or 12, by timer jitter) + checkOwnership + release
      assert.isTrue(evals >= 13 && evals <= 15, `EVALSHA calls: ${evals}`)
    })
  )
})

describe.skipIf(process.env.REDIS_URL !== undefined)("Redis store when Redis fails (spawned servers)", () => {
  it.live("a paused Redis: the work is interrupted with LeaseLost before the lease expires in Redis", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const context = yield* Layer.build(RedisTestServer.layer)
        const server = Context.get(context, RedisTestServer.RedisTestServer)
        const lease = yield* leaseOver(context, { commandTimeout: "1 second" })
        const resume = Effect.sync(() => process.kill(server.pid!, "SIGCONT"))
        yield* Effect.addFinalizer(() => resume)
        const interruptedAt = yield* Deferred.make<number>()
        const startedAt = yield* Clock.currentTimeMillis
        const exit = yield* Effect.exit(
          Lease.withLease(
            freshKey("paused"),
            300,
            Effect.sync(() => process.kill(server.pid!, "SIGSTOP")).pipe(
              Effect.andThen(Effect.never),
              Effect.onInterrupt(() =>
                Clock.currentTimeMillis.pipe(
                  Effect.flatMap((now) => Deferred.succeed(interruptedAt, now)),
                  Effect.andThen(resume)
                )
              )
            )
          ).pipe(Effect.provideService(Lease.Lease, lease))
        )
        const reason = reasonOf(Option.getOrThrow(Exit.findErrorOption(exit)))
        assert.strictEqual(reason._tag === "LeaseLost" && reason.reason, "store-unavailable")
        const heldFor = (yield* Deferred.await(interruptedAt)) - startedAt
        assert.isTrue(heldFor < 300, `interrupted ${heldFor} ms after the acquire was sent, Redis expires it at >= 300`)
        assert.isTrue(heldFor >= 280, `interrupted at ${heldFor} ms, not long before the renew deadline (285 ms)`)
      })
    )
  )

  it.live("a stopped Redis: operations fail with StoreUnavailable within the command timeout, never hang", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const serverScope = yield* Scope.make()
        const server = yield* Layer.buildWithScope(RedisTestServer.layerServer, serverScope)
        const { url } = Context.get(server, RedisTestServer.RedisTestServer)
        const client = yield* Layer.build(NodeRedis.layer({ url, disableOfflineQueue: true }))
        const lease = yield* leaseOver(client, { commandTimeout: "300 millis" })
        const held = acquired(yield* lease.acquire(freshKey("down"), "10 seconds"))
        yield* Scope.close(serverScope, Exit.void)
        const started = yield* Clock.currentTimeMillis
        const failures = [
          yield* Effect.flip(lease.acquire(freshKey("down"), "10 seconds")),
          yield* Effect.flip(lease.release(held)),
          yield* Effect.flip(lease.renew(held)),
          yield* Effect.flip(lease.checkOwnership(held)),
          yield* Effect.flip(lease.inspect(held.key))
        ]
        const elapsed = (yield* Clock.currentTimeMillis) - started
        assert.deepStrictEqual(
          failures.map((error) => reasonOf(error)._tag),
          Array(5).fill("StoreUnavailable")
        )
        assert.match(failures[0]!.message, /Lease store unavailable during acquire of .*Check that Redis is reachable/)
        assert.isTrue(elapsed < 5 * 300 + 1_000, `five bounded failures took ${elapsed} ms`)
      })
    )
  )

  it.live("a closed client: StoreUnavailable at once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const clientScope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(RedisTestServer.layer, clientScope)
        const lease = yield* leaseOver(context)
        yield* Scope.close(clientScope, Exit.void)
        const started = yield* Clock.currentTimeMillis
        const reason = reasonOf(yield* Effect.flip(lease.acquire(freshKey("closed"), "1 second")))
        assert.strictEqual(reason._tag, "StoreUnavailable")
        assert.isTrue((yield* Clock.currentTimeMillis) - started < 1_000)
      })
    )
  )
})
