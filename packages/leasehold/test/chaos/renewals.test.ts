import { assert, describe, layer } from "@effect/vitest"
import { RecordingObserver, RedisFaults, RedisTestServer } from "@leasehold/testing"
import { Context, Deferred, Effect, Fiber, Layer, References } from "effect"
import { Lease, LeaseStore } from "leasehold"
import { freshKey, nowMillis } from "./support.ts"

const LEASES = 5
const TTL = 3_000
/**
 * How long Redis stays down. node-redis's own reconnect backoff (attempts about 0, 0.1-0.3, 0.3-0.7, 0.7-1.3,
 * 1.5-2.3 and 3.1-4.1 s after the drop) has no attempt between 2.3 s and 3.1 s, so a server back at ~2.4 s is found
 * by the client only after the leases' deadline (~2.95 s after their last renew).
 */
const OUTAGE = 2_400

/** A `Lease` service over its own node-redis client of `url`, with or without the client's offline queue. */
const leaseService = (url: string, disableOfflineQueue: boolean) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      Layer.fresh(Lease.layer).pipe(
        Layer.provideMerge(Layer.fresh(RecordingObserver.layer)),
        Layer.provide(LeaseStore.layerRedis()),
        Layer.provide(RedisTestServer.layerClient({ url, disableOfflineQueue }))
      )
    ).pipe(Effect.provideService(References.MinimumLogLevel, "Error"))
    return { lease: Context.get(context, Lease.Lease), recorder: Context.get(context, RecordingObserver.Recorder) }
  })

/**
 * `LEASES` leases held with auto-renew; Redis (append-only, fsync always) is killed right after a renew of all of
 * them, stays down `OUTAGE` ms, and comes back with every lease intact before their deadline. Every lease is kept.
 */
const survive = (disableOfflineQueue: boolean) =>
  Effect.scoped(
    Effect.gen(function* () {
      const redis = yield* RedisFaults.RedisFaults
      const client = yield* leaseService(redis.url, disableOfflineQueue)
      const keys = Array.from({ length: LEASES }, () => freshKey("survive"))
      const held = yield* Effect.forEach(keys, () => Deferred.make<Lease.Active>())
      const holders = yield* Effect.forEach(keys, (key, i) =>
        Effect.forkChild(
          Lease.withLease(key, TTL, (active) => Effect.andThen(Deferred.succeed(held[i]!, active), Effect.never)).pipe(
            Effect.provideService(Lease.Lease, client.lease)
          )
        )
      )
      const actives = yield* Effect.forEach(held, (deferred) => Deferred.await(deferred))
      for (const key of keys) {
        yield* client.recorder.waitFor((event) => event._tag === "renewed" && event.lease.key === key)
      }
      const renewedBefore = (yield* client.recorder.events).length
      const deadline = Math.min(
        ...(yield* Effect.forEach(actives, (active) => active.current)).map((l) => l.validUntil)
      )

      yield* redis.kill
      const killedAt = yield* nowMillis
      yield* Effect.sleep(OUTAGE)
      yield* redis.start
      const backAt = yield* nowMillis
      assert.isBelow(backAt, deadline - 100, "Redis is back, with the leases, before their deadline")

      // The first renew (or loss) of each lease among the events after the kill.
      const renewedAfter = yield* Effect.forEach(keys, (key) => {
        let seen = 0
        return client.recorder
          .waitFor(
            (event) =>
              seen++ >= renewedBefore &&
              (event._tag === "lost" || (event._tag === "renewed" && event.lease.key === key))
          )
          .pipe(
            Effect.andThen(nowMillis),
            Effect.timeout(TTL),
            Effect.orElseSucceed(() => Number.NaN)
          )
      })
      const events = (yield* client.recorder.events).slice(renewedBefore)
      const lost = events.filter((event) => event._tag === "lost").map((event) => event.lease.key)
      const survivors = holders.filter((fiber) => fiber.pollUnsafe() === undefined).length
      console.log(
        `offline queue ${disableOfflineQueue ? "off" : "on"}: down ${Math.round(backAt - killedAt)} ms, back ${Math.round(deadline - backAt)} ms before the deadline; ${LEASES - lost.length}/${LEASES} survive; renewed (or lost) ${renewedAfter.map((at) => Math.round(at - backAt)).join(", ")} ms after Redis was back`
      )
      assert.deepStrictEqual(lost, [], "no lease was lost")
      assert.strictEqual(survivors, LEASES)
      for (const active of actives) {
        yield* active.ensureValid
        assert.isTrue(yield* client.lease.checkOwnership(yield* active.current))
      }
      yield* Fiber.interruptAll(holders)
    })
  )

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: renewals across a Redis restart with persistence", () => {
  layer(RedisFaults.layerWith({ appendOnly: true }), { excludeTestServices: true })("renewals", (it) => {
    it.effect(
      "Redis (append-only) down for 2.4 s while 5 leases of TTL 3 s are held, without the client's offline queue: every lease is kept",
      () => survive(true),
      20_000
    )

    it.effect(
      "the same with NodeRedis.layer's defaults (offline queue on): every lease is kept",
      () => survive(false),
      20_000
    )
  })
})
