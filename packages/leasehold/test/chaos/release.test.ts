import { assert, describe, layer } from "@effect/vitest"
import { RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Data, Effect, Exit, Option, Schedule, Scope } from "effect"
import type * as Redis from "effect/persistence/Redis"
import { Lease } from "leasehold"
import { freshKey, leaseClient, leaseRedisKey, nowMillis } from "./support.ts"

const TTL = 1_500
const COMMAND_TIMEOUT = 400

class WorkFailed extends Data.TaggedError("WorkFailed")<{ readonly step: string }> {}

/** Polls until `key`'s lease is gone from Redis (it expires on its own), bounded; returns when, on `nowMillis`. */
const awaitGone = (redis: Redis.Redis["Service"], key: string) =>
  redis
    .send<number>("EXISTS", leaseRedisKey(key))
    .pipe(
      Effect.repeat({ until: (exists) => exists === 0, schedule: Schedule.spaced("10 millis"), times: 1_000 }),
      Effect.andThen(nowMillis)
    )

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: release while Redis is unreachable", () => {
  layer(RedisFaults.layer, { excludeTestServices: true })("release", (it) => {
    it.effect(
      "a partition at release: withLease returns the work's result within the command timeout, and the lease expires on its own",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const proxy = yield* TcpProxy.make({ host: redis.host, port: redis.port })
            const holder = yield* leaseClient(proxy.url, { commandTimeout: `${COMMAND_TIMEOUT} millis` })
            const other = yield* leaseClient(redis.url)
            const key = freshKey("release-partition")
            const seen = { workEnded: 0, validUntil: 0, fence: 0n }
            const result = yield* holder.run(
              Lease.withLease(key, TTL, (lease) =>
                Effect.gen(function* () {
                  seen.fence = lease.fence
                  seen.validUntil = (yield* lease.current).validUntil
                  yield* proxy.blackhole
                  seen.workEnded = yield* nowMillis
                  return "the work's result"
                })
              )
            )
            const returnedAt = yield* nowMillis
            assert.strictEqual(result, "the work's result")
            const releaseTook = returnedAt - seen.workEnded
            assert.isAtLeast(releaseTook, COMMAND_TIMEOUT - 5, `the release was tried: ${releaseTook} ms`)
            assert.isBelow(releaseTook, COMMAND_TIMEOUT + 1_000, `the release was bounded: ${releaseTook} ms`)
            const failed = yield* holder.recorder.waitFor((event) => event._tag === "releaseFailed")
            assert.strictEqual(failed._tag === "releaseFailed" && failed.error.reason._tag, "StoreUnavailable")

            assert.strictEqual(yield* other.redis.send<number>("EXISTS", leaseRedisKey(key)), 1, "still held in Redis")
            const goneAt = yield* awaitGone(other.redis, key)
            assert.isAtLeast(goneAt, seen.validUntil - 5, "it lived out its TTL")
            assert.isBelow(goneAt, seen.validUntil + 500, "and expired then")

            // The release held by the partition arrives late, on a lease that is gone: it changes nothing.
            const next = yield* other.lease.acquire(key, TTL)
            assert.strictEqual(next._tag === "Acquired" && next.lease.fence, seen.fence + 1n)
            yield* proxy.heal
            assert.strictEqual(yield* holder.redis.send<string>("PING").pipe(Effect.timeout("5 seconds")), "PONG")
            if (next._tag === "Acquired") assert.isTrue(yield* other.lease.checkOwnership(next.lease))
          })
        )
    )

    it.effect("a paused Redis at release: the work's own failure is kept, the release is bounded", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const redis = yield* RedisFaults.RedisFaults
          const holder = yield* leaseClient(redis.url, { commandTimeout: `${COMMAND_TIMEOUT} millis` })
          const key = freshKey("release-paused")
          const pause = yield* Scope.make()
          yield* Effect.addFinalizer(() => Scope.close(pause, Exit.void))
          let workEnded = 0
          const exit = yield* Effect.exit(
            holder.run(
              Lease.withLease(key, TTL, () =>
                Effect.gen(function* () {
                  yield* redis.pause.pipe(Scope.provide(pause))
                  workEnded = yield* nowMillis
                  return yield* new WorkFailed({ step: "the last one" })
                })
              )
            )
          )
          const releaseTook = (yield* nowMillis) - workEnded
          yield* Scope.close(pause, Exit.void)
          assert.deepStrictEqual(Exit.findErrorOption(exit), Option.some(new WorkFailed({ step: "the last one" })))
          assert.isAtLeast(releaseTook, COMMAND_TIMEOUT - 5)
          assert.isBelow(releaseTook, COMMAND_TIMEOUT + 1_000)
          const failed = yield* holder.recorder.waitFor((event) => event._tag === "releaseFailed")
          assert.strictEqual(failed._tag === "releaseFailed" && failed.error.reason._tag, "StoreUnavailable")
        })
      )
    )

    it.effect("Redis down at release: the release fails at once, the result is kept", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const redis = yield* RedisFaults.RedisFaults
          const holder = yield* leaseClient(redis.url, { commandTimeout: "2 seconds" })
          const key = freshKey("release-down")
          yield* Effect.addFinalizer(() => Effect.ignore(redis.start))
          let workEnded = 0
          const result = yield* holder.run(
            Lease.withLease(key, TTL, (lease) =>
              Effect.gen(function* () {
                yield* redis.kill
                workEnded = yield* nowMillis
                return lease.fence
              })
            )
          )
          const releaseTook = (yield* nowMillis) - workEnded
          assert.strictEqual(result, 1n)
          assert.isBelow(releaseTook, 1_000, `a refused connection fails the release at once: ${releaseTook} ms`)
          const failed = yield* holder.recorder.waitFor((event) => event._tag === "releaseFailed")
          assert.strictEqual(failed._tag === "releaseFailed" && failed.error.reason._tag, "StoreUnavailable")
        })
      )
    )
  })
})
