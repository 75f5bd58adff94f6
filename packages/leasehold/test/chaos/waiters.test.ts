import { assert, describe, layer } from "@effect/vitest"
import { RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Context, Effect, Exit, Fiber, Logger, References } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseStore } from "leasehold"
import { acquired } from "../support.ts"
import {
  freshKey,
  type LeaseClient,
  leaseClient,
  leaseClientOn,
  leaseRedisKey,
  nowMillis,
  reasonOf
} from "./support.ts"

const WAITERS = 50
const BUDGET = 6_000

/**
 * `WAITERS` waiters of one process (`side`) queued on `key`, which another client holds. The side's release
 * subscription is opened first (by a wait that times out), so every waiter's first try is answered `Held` and the
 * waiters are all in the queue once the head has tried again: `WAITERS + 1` contentions. Each waiter, once it has
 * the lease, records when.
 */
const queueWaiters = (side: LeaseClient, key: string) =>
  Effect.gen(function* () {
    const warmUp = yield* Effect.exit(side.run(Lease.withLease(key, 1_000, Effect.void, { wait: 50 })))
    assert.strictEqual(reasonOf(warmUp)._tag, "AcquireTimeout")
    const before = (yield* side.recorder.events).filter((event) => event._tag === "contended").length
    const entered: Array<number> = []
    const fibers: Array<Fiber.Fiber<void, unknown>> = []
    for (let i = 0; i < WAITERS; i++) {
      const work = Effect.flatMap(nowMillis, (now) => Effect.sync(() => void entered.push(now)))
      fibers.push(
        yield* Effect.forkChild(side.run(Lease.withLease(key, 1_000, work, { wait: BUDGET })), {
          startImmediately: true
        })
      )
    }
    let contended = 0
    yield* side.recorder
      .waitFor((event) => event._tag === "contended" && ++contended >= before + WAITERS + 1)
      .pipe(Effect.timeout("5 seconds"))
    return { fibers, entered }
  })

/** Waits for every waiter; the tags of the failures, and how many got the lease. */
const outcomes = (fibers: ReadonlyArray<Fiber.Fiber<void, unknown>>) =>
  Effect.gen(function* () {
    const exits = yield* Effect.forEach(fibers, (fiber) => Fiber.await(fiber))
    const failures = exits.filter(Exit.isFailure).map((exit) => reasonOf(exit)._tag)
    return { served: exits.filter(Exit.isSuccess).length, failures }
  })

/**
 * `WAITERS` waiters of `side` queued on a key that another client holds and releases in one transaction with
 * `CLIENT KILL TYPE pubsub`: the side's subscriber is gone before the release is announced, so nobody hears it.
 * Every waiter must be served; returns how long after the release the first got the lease.
 */
const releaseUnheard = (side: LeaseClient) =>
  Effect.gen(function* () {
    const redis = yield* RedisFaults.RedisFaults
    const holder = yield* leaseClient(redis.url)
    const key = freshKey("pubsub-kill")
    const lease = acquired(yield* holder.lease.acquire(key, "30 seconds"))
    const { fibers, entered } = yield* queueWaiters(side, key)

    const releasedAt = yield* nowMillis
    yield* holder.redis.send("MULTI")
    yield* holder.redis.send("CLIENT", "KILL", "TYPE", "pubsub")
    yield* holder.redis.send(
      "EVAL",
      LeaseStore.redisScripts.release,
      "1",
      leaseRedisKey(key),
      lease.token,
      LeaseStore.releaseChannel("lease:"),
      key
    )
    const [killed, released] = yield* holder.redis.send<[number, number]>("EXEC")
    assert.strictEqual(killed, 1, "the waiters' one subscriber connection was cut")
    assert.strictEqual(released, 1, "the lease was released, and announced to no subscriber")

    const { served, failures } = yield* outcomes(fibers)
    assert.deepStrictEqual(failures, [], "no waiter failed")
    assert.strictEqual(served, WAITERS)
    const first = Math.min(...entered) - releasedAt
    console.log(`pubsub kill: release to first acquire ${first.toFixed(1)} ms`)
    return first
  })

/** A `LeaseClient` whose store sees only the generic `Redis` service (no node-redis client in its context). */
const leaseClientOverService = (url: string) =>
  Effect.flatMap(RedisTestServer.connectDisposable(url), (client) =>
    leaseClientOn(Context.make(Redis.Redis, Context.get(client, Redis.Redis)))
  )

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: waiters across reconnects", () => {
  layer(RedisFaults.layer, { excludeTestServices: true })("waiters", (it) => {
    it.effect(
      "a release while the release subscription reconnects (CLIENT KILL TYPE pubsub) is not lost: the resubscribe makes the head try, and every waiter is served",
      () =>
        Effect.gen(function* () {
          const redis = yield* RedisFaults.RedisFaults
          const first = yield* releaseUnheard(yield* leaseClient(redis.url))
          assert.isBelow(first, 1_000, `the first waiter got the lease ${Math.round(first)} ms after the release`)
        }).pipe(Effect.scoped)
    )

    it.effect(
      "the same over the generic Redis service (its subscriber reconnects without telling): the head's safety net finds the free key well inside the budget",
      () =>
        Effect.gen(function* () {
          const redis = yield* RedisFaults.RedisFaults
          const first = yield* releaseUnheard(yield* leaseClientOverService(redis.url))
          // The safety net: a quarter of the 6 s budget, jittered by a fifth, after the head's last try.
          assert.isBelow(first, 2_500, `the first waiter got the lease ${Math.round(first)} ms after the release`)
        }).pipe(Effect.scoped)
    )

    it.effect(
      "the waiters' connections down for 300 ms around a release: their tries fail, they keep waiting within their budgets, and every waiter is served",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const proxy = yield* TcpProxy.make({ host: redis.host, port: redis.port })
            yield* Effect.addFinalizer(() => proxy.heal)
            const holder = yield* leaseClient(redis.url)
            const side = yield* leaseClient(proxy.url)
            const key = freshKey("command-outage")
            const lease = acquired(yield* holder.lease.acquire(key, "30 seconds"))
            const { fibers, entered } = yield* queueWaiters(side, key)

            // Every connection of the waiters' side drops, and new ones are refused until `heal`: each try fails.
            yield* proxy.refuse
            yield* proxy.cut
            const releasedAt = yield* nowMillis
            assert.isTrue(yield* holder.lease.release(lease))
            yield* Effect.sleep(300)
            yield* proxy.heal

            const { served, failures } = yield* outcomes(fibers)
            assert.deepStrictEqual(failures, [], "no waiter failed")
            assert.strictEqual(served, WAITERS)
            const first = Math.min(...entered) - releasedAt
            console.log(`command outage: release to first acquire ${first.toFixed(1)} ms`)
            assert.isBelow(first, 2_500, `the first waiter got the lease ${Math.round(first)} ms after the release`)
            const failedTries = (yield* side.recorder.events).filter((event) => event._tag === "tryFailed").length
            assert.isAbove(failedTries, 0, "tries did fail while the connection was down")
          })
        )
    )

    it.effect(
      "the store still failing when the budget ends: the waiter gets the store's error, after trying within its whole budget",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const proxy = yield* TcpProxy.make({ host: redis.host, port: redis.port })
            yield* Effect.addFinalizer(() => proxy.heal)
            const holder = yield* leaseClient(redis.url)
            const side = yield* leaseClient(proxy.url)
            const key = freshKey("command-outage-long")
            acquired(yield* holder.lease.acquire(key, "30 seconds"))
            yield* proxy.refuse
            yield* proxy.cut
            const startedAt = yield* nowMillis
            const exit = yield* Effect.exit(side.run(Lease.withLease(key, 1_000, Effect.void, { wait: 500 })))
            const took = (yield* nowMillis) - startedAt
            assert.strictEqual(reasonOf(exit)._tag, "StoreUnavailable")
            assert.isAtLeast(took, 495, `it waited its budget: ${Math.round(took)} ms`)
            assert.isBelow(took, 1_500, `and no longer: ${Math.round(took)} ms`)
            const failedTries = (yield* side.recorder.events).filter((event) => event._tag === "tryFailed").length
            assert.isAbove(failedTries, 1, "it tried more than once")
            assert.isBelow(failedTries, 40, `with backoff: ${failedTries} tries`)
          })
        )
    )

    it.effect(
      "a lease hash without a TTL (written by something else): a waiter tries a bounded number of times, and the key is reported to the observer and the log",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const side = yield* leaseClient(redis.url)
            const key = freshKey("no-ttl")
            yield* side.redis.send("HSET", leaseRedisKey(key), "token", "written-by-something-else", "fence", "7")
            const logged: Array<string> = []
            const capture = Logger.make<unknown, void>((options) => {
              if (options.logLevel === "Warn") logged.push([options.message].flat().map(String).join(" "))
            })
            const exit = yield* Effect.exit(
              side
                .run(Lease.withLease(key, 1_000, Effect.void, { wait: 1_000 }))
                .pipe(
                  Effect.provide(Logger.layer([capture])),
                  Effect.provideService(References.MinimumLogLevel, "Warn")
                )
            )
            assert.strictEqual(reasonOf(exit)._tag, "AcquireTimeout")
            const events = yield* side.recorder.events
            const tries = events.filter((event) => event._tag === "contended").length
            console.log(`no-TTL key: ${tries} tries in a 1 s wait`)
            assert.isAtLeast(tries, 2)
            assert.isAtMost(tries, 25, `the waiter tried ${tries} times in 1 s`)
            const reported = events.filter((event) => event._tag === "heldWithoutExpiry")
            assert.strictEqual(reported.length, 1, "reported once per wait")
            assert.isTrue(
              logged.some((line) => line.includes("no expiry")),
              `a warning names the problem: ${JSON.stringify(logged)}`
            )
          })
        )
    )
  })
})
