import { assert, describe, layer } from "@effect/vitest"
import { RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Deferred, Effect, Fiber, Option } from "effect"
import { Lease } from "leasehold"
import { reactionMillis } from "../../src/internal/handle.ts"
import * as FencedResource from "./FencedResource.ts"
import { freshKey, leaseClient, leaseRedisKey, nowMillis, reasonOf } from "./support.ts"

const TTL = 2_000

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: a partition between the holder and Redis", () => {
  layer(RedisFaults.layer, { excludeTestServices: true })("partition", (it) => {
    it.effect(
      "the holder is interrupted with LeaseLost at its deadline, before Redis expires the lease; the next holder starts only after, and the late commands change nothing",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const proxy = yield* TcpProxy.make({ host: redis.host, port: redis.port })
            const a = yield* leaseClient(proxy.url, { commandTimeout: "500 millis" })
            const b = yield* leaseClient(redis.url)
            const key = freshKey("partition")
            const resource = FencedResource.make(b.redis, key)

            const activeA = yield* Deferred.make<Lease.Active>()
            const interruptedAt = yield* Deferred.make<number>()
            const holderA = yield* Effect.forkChild(
              a.run(
                Lease.withLease(key, TTL, (lease) =>
                  Effect.gen(function* () {
                    yield* Deferred.succeed(activeA, lease)
                    const token = (yield* lease.current).token
                    while (true) {
                      yield* lease.ensureValid
                      yield* resource.step({ fence: lease.fence, holder: "A", lease: { key, token } })
                      yield* Effect.sleep(20)
                    }
                  }).pipe(
                    Effect.onInterrupt(() => Effect.flatMap(nowMillis, (now) => Deferred.succeed(interruptedAt, now)))
                  )
                )
              )
            )
            const leaseA = yield* Deferred.await(activeA)
            yield* a.recorder.waitFor((event) => event._tag === "renewed" && event.lease.key === key)
            yield* proxy.blackhole
            const { validUntil } = yield* leaseA.current
            // Redis expires the lease no earlier than this (PTTL counts from when Redis ran it, after `sentAt`).
            const sentAt = yield* nowMillis
            const pttl = yield* b.redis.send<number>("PTTL", leaseRedisKey(key))
            const expiresNoEarlierThan = sentAt + pttl
            assert.isAbove(pttl, 0)

            const startedB = yield* Deferred.make<{ readonly at: number; readonly fence: bigint }>()
            const steppedB = yield* Deferred.make<void>()
            const finishB = yield* Deferred.make<void>()
            const holderB = yield* Effect.forkChild(
              b.run(
                Lease.withLease(
                  key,
                  TTL,
                  (lease) =>
                    Effect.gen(function* () {
                      yield* Deferred.succeed(startedB, { at: yield* nowMillis, fence: lease.fence })
                      const token = (yield* lease.current).token
                      for (let i = 0; i < 3; i++) {
                        yield* lease.ensureValid
                        yield* resource.step({ fence: lease.fence, holder: "B", lease: { key, token } })
                      }
                      yield* Deferred.succeed(steppedB, undefined)
                      yield* Deferred.await(finishB)
                    }),
                  { wait: TTL * 3 }
                )
              )
            )

            const exitA = yield* Fiber.await(holderA)
            const reasonA = reasonOf(exitA)
            assert.strictEqual(reasonA._tag, "LeaseLost")
            if (reasonA._tag === "LeaseLost") {
              assert.strictEqual(reasonA.because, "store-unavailable")
              assert.strictEqual(reasonA.fence, leaseA.fence)
            }
            const stoppedAt = yield* Deferred.await(interruptedAt)
            const deadline = validUntil - reactionMillis(TTL)
            // The renewer gives up earlier by what late timers need, at most a quarter of the TTL (internal/loopDelay.ts).
            assert.isAtLeast(stoppedAt, deadline - TTL / 4 - 5, "not lost before its deadline")
            assert.isBelow(stoppedAt, validUntil, "interrupted by the local validity deadline")
            assert.isBelow(
              stoppedAt,
              expiresNoEarlierThan,
              `interrupted ${expiresNoEarlierThan - stoppedAt} ms before Redis could expire the lease`
            )
            const releaseFailed = yield* a.recorder.waitFor(
              (event) => event._tag === "releaseFailed" && event.lease.key === key
            )
            assert.strictEqual(releaseFailed._tag, "releaseFailed")

            const started = yield* Deferred.await(startedB)
            assert.strictEqual(started.fence, leaseA.fence + 1n)
            assert.isAtLeast(started.at, expiresNoEarlierThan - 2, "the next holder started only after the expiry")
            assert.isAbove(started.at, stoppedAt)
            yield* Deferred.await(steppedB)

            // Heal: A's renewals and release, held by the partition, now reach Redis. A PING on A's connection is
            // answered after them, in order. None of them touches B's lease.
            yield* proxy.heal
            assert.strictEqual(yield* a.redis.send<string>("PING").pipe(Effect.timeout("5 seconds")), "PONG")
            const info = Option.getOrThrow(yield* b.run(Lease.inspect(key)))
            assert.strictEqual(info.fence, started.fence, "B still holds the key after A's late commands")

            const log = yield* resource.log
            const stepsA = log.filter((step) => step.holder === "A")
            const stepsB = log.filter((step) => step.holder === "B")
            assert.isAbove(stepsA.length, 10)
            assert.strictEqual(stepsB.length, 3)
            assert.deepStrictEqual(
              log.map((step) => `${step.verdict}/${step.lease}`),
              log.map(() => "accepted/held"),
              "every protected step ran while its holder held the lease in Redis, with the highest fence"
            )
            const firstB = log.findIndex((step) => step.holder === "B")
            assert.isTrue(
              log.slice(firstB).every((step) => step.holder === "B"),
              "A ran no protected step after B began"
            )
            assert.isTrue(stepsA.every((step) => step.fence === leaseA.fence))

            yield* Deferred.succeed(finishB, undefined)
            yield* Fiber.join(holderB)
          })
        )
    )
  })
})
