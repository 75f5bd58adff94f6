import { assert, describe, layer } from "@effect/vitest"
import { RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Deferred, Effect, Fiber, Option, Schedule } from "effect"
import { Lease } from "leasehold"
import { acquired } from "../support.ts"
import { freshKey, type LeaseClient, leaseClient, leaseRedisKey, reasonOf } from "./support.ts"

const TTL = 3_000

/** Renews by hand, retrying while the client is still reconnecting to the restarted server (bounded). */
const renewOnceReconnected = (client: LeaseClient, lease: Lease.Handle) =>
  client.lease.renew(lease).pipe(
    Effect.retry({
      times: 50,
      schedule: Schedule.spaced("100 millis"),
      while: (error) => error.reason._tag === "StoreUnavailable"
    })
  )

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: Redis restarted without persistence", () => {
  layer(RedisFaults.layer, { excludeTestServices: true })("restart", (it) => {
    it.effect(
      "holders learn of the loss at their next renew: stolen where another client took the key, expired where nobody did; no renew brings a lease back",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const proxy = yield* TcpProxy.make({ host: redis.host, port: redis.port })
            const a = yield* leaseClient(proxy.url)
            const c = yield* leaseClient(redis.url)
            const keys = { stolen: freshKey("stolen"), expired: freshKey("expired") }
            const keysOfManual = { kept: freshKey("manual-kept"), taken: freshKey("manual-taken") }

            // Two earlier holders, so that A's fence is 3: the restart will reset the counter.
            for (let i = 0; i < 2; i++) yield* a.lease.release(acquired(yield* a.lease.acquire(keys.stolen, TTL)))
            const fenceA = yield* Deferred.make<bigint>()
            const holderA = yield* Effect.forkChild(
              a.run(
                Lease.withLease(keys.stolen, TTL, (lease) =>
                  Effect.andThen(Deferred.succeed(fenceA, lease.fence), Effect.never)
                )
              )
            )
            const holderC = yield* Effect.forkChild(c.run(Lease.withLease(keys.expired, TTL, Effect.never)))
            const manualKept = acquired(yield* c.lease.acquire(keysOfManual.kept, "30 seconds"))
            const manualTaken = acquired(yield* c.lease.acquire(keysOfManual.taken, "30 seconds"))
            assert.strictEqual(yield* Deferred.await(fenceA), 3n)
            yield* a.recorder.waitFor((event) => event._tag === "renewed" && event.lease.key === keys.stolen)
            yield* c.recorder.waitFor((event) => event._tag === "renewed" && event.lease.key === keys.expired)

            // A's next renew is held back until another client has taken its key on the new, empty server.
            yield* proxy.blackhole
            yield* redis.restart
            const thief = yield* leaseClient(redis.url)
            const stolen = acquired(yield* thief.lease.acquire(keys.stolen, "30 seconds"))
            const taken = acquired(yield* thief.lease.acquire(keysOfManual.taken, "30 seconds"))
            assert.strictEqual(stolen.fence, 1n, "the fence counter vanished with the data and starts again at 1")
            yield* proxy.heal

            const reasonA = reasonOf(yield* Fiber.await(holderA).pipe(Effect.timeout("10 seconds")))
            assert.deepStrictEqual(reasonA._tag === "LeaseLost" && { because: reasonA.because, fence: reasonA.fence }, {
              because: "stolen",
              fence: 3n
            })
            const reasonC = reasonOf(yield* Fiber.await(holderC).pipe(Effect.timeout("10 seconds")))
            assert.strictEqual(reasonC._tag === "LeaseLost" && reasonC.because, "expired")

            assert.isTrue(Option.isNone(yield* renewOnceReconnected(c, manualKept)), "a manual renew: not held")
            assert.isTrue(Option.isNone(yield* renewOnceReconnected(c, manualTaken)))
            const lostManual = (yield* c.recorder.events).flatMap((event) =>
              event._tag === "lost" ? [`${event.lease.key}:${event.because}`] : []
            )
            assert.includeMembers(lostManual, [
              `${keys.expired}:expired`,
              `${keysOfManual.kept}:expired`,
              `${keysOfManual.taken}:stolen`
            ])

            // Nothing resurrected: the thief still holds what it took, the rest is gone.
            const hash = (key: string) => thief.redis.send<string | null>("HGET", leaseRedisKey(key), "token")
            assert.strictEqual(yield* hash(keys.stolen), stolen.token)
            assert.strictEqual(yield* hash(keysOfManual.taken), taken.token)
            assert.isNull(yield* hash(keys.expired))
            assert.isNull(yield* hash(keysOfManual.kept))
            assert.isTrue(yield* thief.lease.checkOwnership(stolen))
            const pttl = yield* thief.redis.send<number>("PTTL", leaseRedisKey(keys.stolen))
            assert.isTrue(pttl > 25_000 && pttl <= 30_000, `the thief's TTL is its own: ${pttl} ms`)
          })
        )
    )
  })
})
