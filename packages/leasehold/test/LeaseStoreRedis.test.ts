import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Cause, Clock, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Queue, Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseStore, RedisTransport } from "leasehold"
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

/** Only the generic `Redis` service of `context` (no transport): the store must send through `Redis`. */
const serviceOnly = <R>(layer: Layer.Layer<R | Redis.Redis, unknown>) =>
  Layer.effect(Redis.Redis, Effect.service(Redis.Redis)).pipe(Layer.provide(layer), Layer.orDie)

/** Counts the commands a node-redis client is sent directly (it forwards them to the real client). */
const countingClient = (client: NodeRedis.NodeRedis["Service"]["client"]) => {
  const counted = { sent: 0, timeouts: new Set<unknown>() }
  const spy = Object.create(client) as typeof client
  Object.defineProperty(spy, "sendCommand", {
    value: (...args: Parameters<typeof client.sendCommand>) => {
      counted.sent++
      counted.timeouts.add(args[1]?.timeout)
      return client.sendCommand(...args)
    }
  })
  return { spy, counted }
}

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

  it.effect("keys holding } or % live under an escaped tag, distinct from keys spelled like their escapes", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const base = freshKey("braces")
      const names = {
        [`}${base}`]: `lease:{%7D${base}}`,
        [`%7D${base}`]: `lease:{%257D${base}}`,
        [`{${base}}`]: `lease:{{${base}%7D}`
      }
      for (const [key, redisKey] of Object.entries(names)) {
        const lease = acquired(yield* Lease.acquire(key, "10 seconds"))
        assert.strictEqual(lease.fence, 1n, `${key} is a key of its own`)
        assert.strictEqual(yield* redis.send<string | null>("HGET", redisKey, "token"), lease.token)
        assert.strictEqual(yield* redis.send<string | null>("GET", `${redisKey}:fence`), "1")
      }
    })
  )

  it.effect("a prefix holding a brace fails the store with InvalidOption, before anything is sent", () =>
    Effect.gen(function* () {
      const context = yield* Effect.context<Redis.Redis>()
      for (const prefix of ["lease{", "lease:}", "{tag}:"]) {
        const error = yield* Effect.flip(leaseOver(context, { prefix }))
        assert.strictEqual(reasonOf(error)._tag, "InvalidOption")
        assert.include(error.message, `Invalid lease option "prefix": ${JSON.stringify(prefix)} contains a brace`)
      }
    })
  )

  it.effect("lone surrogates are not keys: a waiter on one is never served by the holder of U+FFFD", () =>
    Effect.gen(function* () {
      const holder = acquired(yield* Lease.acquire("\uFFFD", "10 seconds"))
      const waiter = yield* Effect.forkChild(
        Lease.withLease("\uDBFF", "10 seconds", Effect.succeed("held"), { wait: "5 seconds" })
      )
      assert.strictEqual(reasonOf(yield* Effect.flip(Lease.acquire("\uD800", "10 seconds")))._tag, "InvalidKey")
      assert.isTrue(yield* Lease.release(holder))
      const exit = yield* Fiber.await(waiter)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.strictEqual(reasonOf(Cause.squash(exit.cause))._tag, "InvalidKey")
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

  it.effect("after SCRIPT FLUSH (as after a restart) every operation still works: EVALSHA, then EVAL once", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const generic = yield* leaseOver(yield* Layer.build(serviceOnly(RedisTestServer.layer)))
      for (const lease of [yield* Lease.Lease, generic]) {
        const key = freshKey("noscript")
        yield* redis.send("SCRIPT", "FLUSH")
        yield* redis.send("CONFIG", "RESETSTAT")
        const held = acquired(yield* lease.acquire(key, "10 seconds"))
        assert.isTrue(Option.isSome(yield* lease.renew(held)))
        assert.isTrue(yield* lease.checkOwnership(held))
        assert.isTrue(yield* lease.release(held))
        const counts = yield* commandCounts
        assert.strictEqual(counts.evalsha, 4, "each operation tries EVALSHA first")
        assert.strictEqual(counts.eval, 4, "each script unknown to Redis is sent once in full")
        yield* redis.send("CONFIG", "RESETSTAT")
        const again = acquired(yield* lease.acquire(key, "10 seconds"))
        assert.isTrue(yield* lease.release(again))
        const after = yield* commandCounts
        assert.deepStrictEqual([after.evalsha, after.eval], [2, undefined], "EVAL loaded them: EVALSHA only")
      }
    })
  )

  it.effect("sends over the RedisTransport in the context, each command without the client's own timer", () =>
    Effect.gen(function* () {
      const nodeRedis = yield* NodeRedis.NodeRedis
      const { spy, counted } = countingClient(nodeRedis.client)
      const lease = yield* Effect.scoped(
        Effect.gen(function* () {
          const transport = yield* RedisTransport.fromNodeRedisClient(spy)
          const context = Context.add(yield* Effect.context<Redis.Redis>(), RedisTransport.RedisTransport, transport)
          const lease = yield* leaseOver(context)
          const start = counted.sent
          const held = acquired(yield* lease.acquire(freshKey("direct"), "10 seconds"))
          assert.isTrue(yield* lease.release(held))
          assert.strictEqual(counted.sent - start, 2, "acquire and release went over the transport")
          return lease
        })
      )
      // leasehold bounds them itself: the client's own per-command timer (a 5 s timer per command) is turned off.
      assert.deepStrictEqual([...counted.timeouts], [0])
      assert.isDefined(lease)
    })
  )

  it.effect("never guesses a client: a NodeRedis client in the context without a transport is not used", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const nodeRedis = yield* NodeRedis.NodeRedis
      const { spy, counted } = countingClient(nodeRedis.client)
      const context = Context.add(Context.make(Redis.Redis, redis), NodeRedis.NodeRedis, { ...nodeRedis, client: spy })
      const lease = yield* leaseOver(context)
      const start = counted.sent
      const key = freshKey("no-guess")
      const held = acquired(yield* lease.acquire(key, "10 seconds"))
      assert.strictEqual(yield* redis.send<string | null>("HGET", `lease:{${key}}`, "token"), held.token)
      assert.isTrue(yield* lease.release(held))
      assert.strictEqual(counted.sent, start, "nothing was sent on the NodeRedis client")
    })
  )

  it.effect("renewMany renews a batch of leases in one EVALSHA on one primary", () =>
    Effect.gen(function* () {
      const redis = yield* Redis.Redis
      const store = yield* LeaseStore.LeaseStore
      const leases = []
      for (let i = 0; i < 3; i++) leases.push(acquired(yield* Lease.acquire(freshKey("batch"), "10 seconds")))
      const requests = leases.map((lease) => ({ key: lease.key, token: lease.token, ttlMillis: 30_000 }))
      yield* redis.send("CONFIG", "RESETSTAT")
      assert.deepStrictEqual(yield* store.renewMany(requests), ["renewed", "renewed", "renewed"])
      assert.strictEqual((yield* commandCounts).evalsha, 1)
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
        const store = yield* LeaseStore.LeaseStore
        assert.isFalse(yield* store.release(lease.key, "not-the-owner-token" as never))
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
        // A TTL long enough for the lateness margin (at most TTL/4) to cover the stalls of a machine running the
        // whole suite on two cores; what a shorter margin leaves open is measured by `npm run timing`.
        const ttl = 1_000
        const interruptedAt = yield* Deferred.make<number>()
        const startedAt = yield* Clock.currentTimeMillis
        const exit = yield* Effect.exit(
          Lease.withLease(
            freshKey("paused"),
            ttl,
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
        assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "store-unavailable")
        const heldFor = (yield* Deferred.await(interruptedAt)) - startedAt
        assert.isTrue(
          heldFor < ttl,
          `interrupted ${heldFor} ms after the acquire was sent, Redis expires it at >= ${ttl}`
        )
        // The renew deadline (TTL less drift and reaction: 978 ms) less the lateness margin, at most a quarter of the
        // TTL (internal/loopDelay.ts).
        const deadline = ttl - (ttl * 0.01 + 2) - 10
        assert.isTrue(heldFor >= deadline - ttl / 4 - 5, `interrupted at ${heldFor} ms, long before the deadline`)
      })
    )
  )

  for (const transport of ["the node-redis client", "the Redis service"] as const) {
    it.live(`a stopped Redis (through ${transport}): StoreUnavailable within the command timeout, never a hang`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const serverScope = yield* Scope.make()
          const server = yield* Layer.buildWithScope(RedisTestServer.layerServer, serverScope)
          const { url } = Context.get(server, RedisTestServer.RedisTestServer)
          const clientLayer = RedisTestServer.layerClient({ url, disableOfflineQueue: true })
          const client = yield* Layer.build(transport === "the Redis service" ? serviceOnly(clientLayer) : clientLayer)
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
          assert.match(
            failures[0]!.message,
            /Lease store unavailable during acquire of .*Check that Redis is reachable/
          )
          assert.isTrue(elapsed < 5 * 300 + 1_000, `five bounded failures took ${elapsed} ms`)
        })
      )
    )

    it.live(`a paused Redis (through ${transport}): each command fails when the command timeout is over`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const server = yield* Layer.build(RedisTestServer.layer)
          const { pid } = Context.get(server, RedisTestServer.RedisTestServer)
          const context =
            transport === "the Redis service" ? yield* Layer.build(serviceOnly(Layer.succeedContext(server))) : server
          const lease = yield* leaseOver(context, { commandTimeout: "200 millis" })
          const resume = Effect.sync(() => process.kill(pid!, "SIGCONT"))
          yield* Effect.addFinalizer(() => resume)
          yield* Effect.sync(() => process.kill(pid!, "SIGSTOP"))
          const started = yield* Clock.currentTimeMillis
          const tries = yield* Effect.forEach(
            [1, 2, 3],
            (i) => Effect.flip(lease.acquire(freshKey(`paused-${i}`), "10 seconds")),
            { concurrency: "unbounded" }
          )
          const elapsed = (yield* Clock.currentTimeMillis) - started
          for (const error of tries) {
            assert.strictEqual(reasonOf(error)._tag, "StoreUnavailable")
            assert.match(error.message, /no reply from Redis within 200ms/)
          }
          assert.isTrue(elapsed >= 195 && elapsed < 600, `three concurrent commands timed out after ${elapsed} ms`)
        })
      )
    )
  }

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
