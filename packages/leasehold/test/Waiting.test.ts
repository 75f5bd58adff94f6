import { assert, describe, it, layer } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Clock, Context, Duration, Effect, Exit, Fiber, Layer, Option, Schedule } from "effect"
import * as Redis from "effect/persistence/Redis"
import { TestClock } from "effect/testing"
import { Lease, LeaseError, LeaseStore } from "leasehold"
import { makeTestLease } from "./support.ts"

const startNow = { startImmediately: true } as const

/** Opens the process's release notifications (lazily opened by the first waiter) so that later waiters join at once. */
const warmUp = Effect.gen(function* () {
  yield* Lease.acquire("warm-up", "10 seconds")
  const waiter = yield* Effect.forkChild(Lease.withLease("warm-up", 300, Effect.void, { wait: 1 }))
  yield* TestClock.adjust(2)
  const exit = yield* Fiber.await(waiter)
  assert.isTrue(Exit.isFailure(exit))
})

describe("Waiting in one process (memory store, TestClock)", () => {
  it.effect("waiters are served first come, first served, and only the head sends commands", () => {
    const { layer, calls } = makeTestLease()
    const acquires = (key: string) => calls.filter((call) => call.op === "acquire" && call.key === key).length
    return Effect.gen(function* () {
      yield* warmUp
      const holder = yield* Lease.acquire("fifo", "10 seconds")
      const order: Array<number> = []
      const fibers = []
      for (const id of [1, 2, 3, 4, 5]) {
        fibers.push(
          yield* Effect.forkChild(
            Lease.withLease("fifo", 300, () => Effect.sync(() => order.push(id)), { wait: "5 seconds" }),
            startNow
          )
        )
      }
      // the holder's acquire, then the first waiter's try and its try as head of the queue; the others only queued
      assert.strictEqual(acquires("fifo"), 3)
      yield* TestClock.adjust(Duration.seconds(2))
      // Only the head tries again, on its safety net: a quarter of its 5 s budget (jittered by a fifth).
      const polls = acquires("fifo") - 3
      assert.isTrue(polls >= 1 && polls <= 2, `the head polled ${polls} times in 2 s`)
      assert.isTrue(holder._tag === "Acquired" && (yield* Lease.release(holder.lease)))
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(order, [1, 2, 3, 4, 5])
      assert.strictEqual(acquires("fifo"), 3 + polls + 5, "one try per hand-off: no thundering herd")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a waiter that leaves the queue hands the head to the next, which tries at once", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      yield* warmUp
      const holder = yield* Lease.acquire("leave", "10 seconds")
      const first = yield* Effect.forkChild(
        Lease.withLease("leave", 300, (lease) => Effect.succeed(lease.fence), { wait: "5 seconds" }),
        startNow
      )
      const second = yield* Effect.forkChild(
        Lease.withLease("leave", 300, (lease) => Effect.succeed(lease.fence), { wait: "5 seconds" }),
        startNow
      )
      yield* Fiber.interrupt(first)
      assert.isTrue(holder._tag === "Acquired" && (yield* Lease.release(holder.lease)))
      assert.strictEqual(yield* Fiber.join(second), 2n)
      const firstExit = yield* Fiber.await(first)
      assert.isTrue(Exit.hasInterrupts(firstExit))
    }).pipe(Effect.provide(layer))
  })

  it.effect("queued waiters time out on their own budgets, naming the holder the head saw", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      yield* warmUp
      yield* Lease.acquire("budgets", "10 seconds", { owner: { id: "slow-holder" } })
      const head = yield* Effect.forkChild(
        Lease.withLease("budgets", 300, Effect.void, { wait: "3 seconds" }),
        startNow
      )
      const queued = yield* Effect.forkChild(
        Lease.withLease("budgets", 300, Effect.void, { wait: "1 second" }),
        startNow
      )
      yield* TestClock.adjust(Duration.seconds(1))
      const failure = Option.getOrThrow(Exit.findErrorOption(yield* Fiber.await(queued)))
      const reason = LeaseError.isLeaseError(failure) ? failure.reason : undefined
      assert.strictEqual(reason?._tag, "AcquireTimeout")
      assert.strictEqual(reason?._tag === "AcquireTimeout" && reason.holder?.id, "slow-holder")
      yield* TestClock.adjust(Duration.seconds(2))
      assert.isTrue(Exit.isFailure(yield* Fiber.await(head)))
    }).pipe(Effect.provide(layer))
  })
})

/** Calls per command since the last `CONFIG RESETSTAT`. */
const evalshaCalls = Effect.gen(function* () {
  const redis = yield* Redis.Redis
  const info = yield* redis.send<string>("INFO", "commandstats")
  return Number(/^cmdstat_evalsha:calls=(\d+)/m.exec(info)?.[1] ?? 0)
})

/** Polls `condition` on the real clock until it holds (bounded): for state only Redis can show. */
const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>) =>
  condition.pipe(
    Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("5 millis") }),
    Effect.timeout("5 seconds")
  )

describe("Waiting across processes on Redis", () => {
  layer(RedisTestServer.layer, { excludeTestServices: true })("pub/sub", (it) => {
    it.effect("a release by one client wakes the waiters of another at once, through one shared subscription", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const redis = yield* Redis.Redis
          const serviceOn = Layer.build(
            Layer.fresh(Lease.layer).pipe(
              Layer.provide(LeaseStore.layerRedis()),
              Layer.provide(Layer.succeed(Redis.Redis, redis))
            )
          )
          const holderSide = Context.get(yield* serviceOn, Lease.Lease)
          const waiterSide = yield* serviceOn
          const keys = ["cross-1", "cross-2", "cross-3"]
          yield* redis.send("CONFIG", "RESETSTAT")
          const held = []
          for (const key of keys) {
            const attempt = yield* holderSide.acquire(key, "30 seconds")
            assert.strictEqual(attempt._tag, "Acquired")
            if (attempt._tag === "Acquired") held.push(attempt.lease)
          }
          const entered: Array<number> = []
          const waiters = yield* Effect.forEach(keys, (key) =>
            Effect.forkChild(
              Lease.withLease(key, "5 seconds", Clock.currentTimeMillis.pipe(Effect.map((now) => entered.push(now))), {
                wait: "10 seconds"
              }).pipe(Effect.provide(waiterSide))
            )
          )
          // each waiter: its first try, then its try as head of its queue after subscribing; then silence
          yield* eventually(Effect.map(evalshaCalls, (calls) => calls >= 3 + 2 * 3))
          const [, subscribers] = yield* redis.send<[string, number]>("PUBSUB", "NUMSUB", "lease:released")
          assert.strictEqual(subscribers, 1, "one subscription for all the waiters of the process")
          const releasedAt = yield* Clock.currentTimeMillis
          for (const lease of held) assert.isTrue(yield* holderSide.release(lease))
          yield* Fiber.joinAll(waiters)
          for (const at of entered) assert.isTrue(at - releasedAt < 200, `entered ${at - releasedAt} ms after release`)
          assert.strictEqual(entered.length, 3)
        })
      )
    )
  })
})
