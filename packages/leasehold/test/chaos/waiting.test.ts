import { assert, describe, layer } from "@effect/vitest"
import { RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Effect, Fiber, Option } from "effect"
import { Lease } from "leasehold"
import { freshKey, leaseClient, nowMillis, reasonOf } from "./support.ts"

/** One-way latency of the waiter's link: long enough to place the pause between its first reply and what follows. */
const LATENCY = 300
const WAIT = 1_000

/**
 * A waiter for a held key, through a proxy that delays each way by `LATENCY`; Redis is paused right after the
 * waiter's first try has been answered. The waiter must give up when its budget ends.
 *
 * `notificationsOpen`: the waiter's `Lease` service has waited before, so its one subscription to the release
 * announcements is already open; otherwise this waiter opens it, after its first try, while Redis is paused.
 */
const waitWhileRedisStops = (options: { readonly notificationsOpen: boolean }) =>
  Effect.scoped(
    Effect.gen(function* () {
      const redis = yield* RedisFaults.RedisFaults
      const proxy = yield* TcpProxy.make({ host: redis.host, port: redis.port })
      yield* Effect.addFinalizer(() => proxy.heal)
      const holder = yield* leaseClient(redis.url)
      const waiter = yield* leaseClient(proxy.url, { commandTimeout: "5 seconds" })
      const key = freshKey("waiting")
      assert.strictEqual((yield* holder.lease.acquire(key, "30 seconds"))._tag, "Acquired")
      // Load the waiter's scripts first, so that its first try is one round trip.
      const warm = yield* waiter.lease.acquire(freshKey("warm-up"), "1 second")
      if (warm._tag === "Acquired") yield* waiter.lease.release(warm.lease)
      if (options.notificationsOpen) {
        const early = yield* Effect.exit(waiter.run(Lease.withLease(key, 1_000, Effect.void, { wait: 50 })))
        assert.strictEqual(reasonOf(early)._tag, "AcquireTimeout")
      }
      yield* proxy.setLatency({ toServer: LATENCY, toClient: LATENCY })

      const startedAt = yield* nowMillis
      const waiting = yield* Effect.forkChild(waiter.run(Lease.withLease(key, 1_000, Effect.void, { wait: WAIT })))
      // The first try reaches Redis at +LATENCY and its Held reply the waiter at +2 LATENCY; whatever the waiter
      // sends next reaches Redis after +3 LATENCY, when Redis is paused (until the scope closes).
      yield* Effect.sleep(2.5 * LATENCY)
      yield* redis.pause
      const exit = yield* Fiber.await(waiting).pipe(Effect.timeoutOption(WAIT + 1_000))
      const elapsed = (yield* nowMillis) - startedAt
      assert.isTrue(
        Option.isSome(exit),
        `the waiter (wait budget ${WAIT} ms) was still waiting ${Math.round(elapsed)} ms after it began`
      )
      // AcquireTimeout when the budget ends (docs/semantics.md, "Waiting"); StoreUnavailable would do too: the store
      // did stop answering. Either way, within the budget.
      if (Option.isSome(exit)) assert.include(["AcquireTimeout", "StoreUnavailable"], reasonOf(exit.value)._tag)
    })
  )

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: waiting while Redis stops answering", () => {
  layer(RedisFaults.layer, { excludeTestServices: true })("waiting", (it) => {
    it.effect(
      "a waiter whose release notifications are already open keeps its wait budget when the store stops answering right after its first try",
      () => waitWhileRedisStops({ notificationsOpen: true })
    )

    it.effect(
      "a first waiter (release notifications not open yet) keeps its wait budget when the store stops answering right after its first try",
      () => waitWhileRedisStops({ notificationsOpen: false })
    )
  })
})
