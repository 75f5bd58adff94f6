import { assert, describe, layer } from "@effect/vitest"
import { RedisFaults, RedisTestServer, Stall } from "@leasehold/testing"
import { Effect, Exit } from "effect"
import { Lease } from "leasehold"
import * as FencedResource from "./FencedResource.ts"
import type { LeaseRecord, WorkerConfig } from "./protocol.ts"
import { freshKey, leaseClient, reasonOf } from "./support.ts"
import * as Workers from "./Workers.ts"

const TTL = 500
/** Three TTLs: the lease expires in Redis and the contender holds and releases it meanwhile. */
const STALL = 3 * TTL

/**
 * A contender in another process: once it is told to go, it waits for `key`, holds it 300 ms (steps on the resource
 * `stall:<key>`), and exits.
 */
const contender = (url: string, key: string): WorkerConfig => ({
  id: "contender",
  leaseUrl: url,
  resourceUrl: url,
  resource: "stall",
  checkLease: true,
  keys: [key],
  workers: 1,
  ttlMillis: TTL,
  holdMillis: [300, 300],
  stepEveryMillis: 50,
  waitMillis: 10_000,
  commandTimeoutMillis: 1_000,
  leasesPerWorker: 1,
  seed: 1
})

const isLease = (line: { readonly type: string }): line is LeaseRecord => line.type === "lease"

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: the holder's process stalls longer than the TTL", () => {
  layer(RedisFaults.layer, { excludeTestServices: true })("stall", (it) => {
    it.effect(
      "with ensureValid before each protected step, no step runs after the stall: the holder gets LeaseLost, the contender held the key meanwhile",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const holder = yield* leaseClient(redis.url)
            const key = freshKey("stall-checked")
            const resource = FencedResource.make(holder.redis, `stall:${key}`)
            const other = yield* Workers.spawn(contender(redis.url, key))
            yield* other.waitFor((line) => line.type === "ready")

            const window = { from: 0, to: 0, blocked: 0, fence: 0n }
            const exit = yield* Effect.exit(
              holder.run(
                Lease.withLease(key, TTL, (lease) =>
                  Effect.gen(function* () {
                    window.fence = lease.fence
                    const token = (yield* lease.current).token
                    yield* lease.ensureValid
                    yield* resource.step({ fence: lease.fence, holder: "stalled", lease: { key, token } })
                    yield* other.go({ untilEpochMillis: Date.now() + 10_000 })
                    yield* other.waitFor((line) => line.type === "going")
                    window.from = Date.now()
                    window.blocked = yield* Stall.stall(STALL)
                    window.to = Date.now()
                    yield* lease.ensureValid
                    yield* resource.step({ fence: lease.fence, holder: "stalled", lease: { key, token } })
                  })
                )
              )
            )
            assert.isAtLeast(window.blocked, STALL, "the event loop was blocked for the whole stall")
            const reason = reasonOf(exit)
            assert.strictEqual(reason._tag, "LeaseLost")
            if (reason._tag === "LeaseLost") assert.include(["expired", "store-unavailable"], reason.because)

            const record = (yield* other.waitFor(isLease)) as LeaseRecord
            assert.strictEqual(record.outcome, "completed")
            assert.strictEqual(BigInt(record.fence), window.fence + 1n)
            assert.isTrue(
              record.startedAt > window.from && record.startedAt < window.to,
              "the contender took the key during the stall"
            )
            const log = yield* resource.log
            const stalledSteps = log.filter((step) => step.holder === "stalled")
            assert.strictEqual(stalledSteps.length, 1, "only the step before the stall ran")
            assert.isAbove(log.length, 1)
            assert.isTrue(
              log.every((step) => step.verdict === "accepted" && step.lease === "held"),
              "every step that ran was under a held lease"
            )
          })
        )
    )

    it.effect(
      "without ensureValid, the step right after the stall runs on a lost lease (a silent overrun): only the fence refuses it, and LeaseLost comes after",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const holder = yield* leaseClient(redis.url)
            const key = freshKey("stall-unchecked")
            const resource = FencedResource.make(holder.redis, `stall:${key}`)
            const other = yield* Workers.spawn(contender(redis.url, key))
            yield* other.waitFor((line) => line.type === "ready")

            const exit = yield* Effect.exit(
              holder.run(
                Lease.withLease(key, TTL, (lease) =>
                  Effect.gen(function* () {
                    const token = (yield* lease.current).token
                    yield* resource.step({ fence: lease.fence, holder: "stalled", lease: { key, token } })
                    yield* other.go({ untilEpochMillis: Date.now() + 10_000 })
                    yield* other.waitFor((line) => line.type === "going")
                    yield* Stall.stall(STALL)
                    yield* resource.step({ fence: lease.fence, holder: "stalled", lease: { key, token } })
                    return yield* Effect.never
                  })
                )
              )
            )
            const reason = reasonOf(exit)
            assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "store-unavailable")
            assert.isFalse(Exit.isSuccess(exit))

            const record = (yield* other.waitFor(isLease)) as LeaseRecord
            assert.strictEqual(record.outcome, "completed")
            const log = yield* resource.log
            const late = log.filter((step) => step.holder === "stalled")[1]
            assert.isDefined(late, "the step after the stall ran")
            assert.strictEqual(late!.verdict, "stale", "a fenced resource refuses it: a newer holder stepped first")
            assert.include(["expired", "stolen"], late!.lease, "it ran when the lease was no longer held in Redis")
            assert.isTrue(
              log.filter((step) => step.holder !== "stalled").every((step) => step.lease === "held"),
              "the contender's steps all ran under its lease"
            )
          })
        )
    )
  })
})
