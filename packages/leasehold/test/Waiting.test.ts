import { assert, describe, it, layer } from "@effect/vitest"
import { RecordingObserver, RedisTestServer } from "@leasehold/testing"
import { type Cause, Clock, Context, Duration, Effect, Exit, Fiber, Layer, Option, Queue, Schedule } from "effect"
import * as Redis from "effect/persistence/Redis"
import { TestClock } from "effect/testing"
import { Lease, LeaseError, LeaseStore } from "leasehold"
import { acquired, type Faults, failureOf, makeTestLease, reasonOf } from "./support.ts"

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

/** A memory store whose acquires fail with `StoreUnavailable` while `down.now` is set. */
const flakyAcquires =
  (down: { now: boolean }): Faults =>
  (store) => ({
    acquire: (key, token, ttlMillis, owner) =>
      down.now
        ? Effect.fail(
            LeaseError.make(new LeaseError.StoreUnavailable({ operation: "acquire", key, cause: new Error("down") }))
          )
        : store.acquire(key, token, ttlMillis, owner)
  })

const tryFailures = Effect.gen(function* () {
  const recorder = yield* RecordingObserver.Recorder
  return (yield* recorder.events).filter((event) => event._tag === "tryFailed").length
})

describe("Waiting through store failures and lost announcements (memory store, TestClock)", () => {
  it.effect(
    "a failed try fails that try, not the waiter: it is retried with backoff, and the waiter gets the lease",
    () => {
      const down = { now: false }
      const { layer } = makeTestLease(flakyAcquires(down))
      return Effect.gen(function* () {
        yield* warmUp
        const holder = acquired(yield* Lease.acquire("flaky", "10 seconds"))
        const waiter = yield* Effect.forkChild(
          Lease.withLease("flaky", 300, (lease) => Effect.succeed(lease.fence), { wait: "5 seconds" }),
          startNow
        )
        down.now = true
        assert.isTrue(yield* Lease.release(holder))
        // The release woke the head; its tries fail, after 10, 20, 40, 80 ms (jittered by a fifth).
        yield* TestClock.adjust(200)
        const failed = yield* tryFailures
        assert.isTrue(failed >= 4 && failed <= 6, `${failed} failed tries in 200 ms`)
        down.now = false
        yield* TestClock.adjust(1_000)
        assert.strictEqual(yield* Fiber.join(waiter), 2n)
      }).pipe(Effect.provide(layer))
    }
  )

  it.effect("when the budget ends with the store still failing, the waiter gets the store's error", () => {
    const down = { now: false }
    const { layer } = makeTestLease(flakyAcquires(down))
    return Effect.gen(function* () {
      yield* warmUp
      down.now = true
      const waiter = yield* Effect.forkChild(Lease.withLease("down", 300, Effect.void, { wait: "2 seconds" }), startNow)
      yield* TestClock.adjust(Duration.seconds(2))
      const reason = reasonOf(failureOf(yield* Fiber.await(waiter)))
      assert.strictEqual(reason._tag, "StoreUnavailable")
      const failed = yield* tryFailures
      // 10 ms doubling to 1 s: about 8 tries in 2 s, never a loop.
      assert.isTrue(failed >= 6 && failed <= 10, `${failed} failed tries in 2 s`)
    }).pipe(Effect.provide(layer))
  })

  it.effect("under a Schedule policy, failed tries are retried as the schedule says", () => {
    const down = { now: true }
    const { layer, count } = makeTestLease(flakyAcquires(down))
    return Effect.gen(function* () {
      const waiter = yield* Effect.forkChild(
        Lease.withLease("scheduled", 300, Effect.succeed("done"), { wait: Schedule.spaced(100) }),
        startNow
      )
      yield* TestClock.adjust(250)
      down.now = false
      yield* TestClock.adjust(100)
      assert.strictEqual(yield* Fiber.join(waiter), "done")
      assert.strictEqual(count("acquire"), 4)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a resumed release watch makes the head of every queue try at once: releases may have gone unheard", () => {
    const watch = Effect.runSync(Queue.unbounded<LeaseStore.ReleaseEvent, Cause.Done>())
    const { layer } = makeTestLease(() => ({ watchReleases: Effect.succeed(watch) }))
    return Effect.gen(function* () {
      const store = yield* LeaseStore.LeaseStore
      const held = [
        acquired(yield* Lease.acquire("unheard-1", "10 seconds")),
        acquired(yield* Lease.acquire("unheard-2", "10 seconds"))
      ]
      const waiters = yield* Effect.forEach(held, (lease) =>
        Effect.forkChild(Lease.withLease(lease.key, 300, Effect.succeed(lease.key), { wait: "5 seconds" }), startNow)
      )
      yield* TestClock.adjust(1)
      // Released in the store without an announcement (this watch hears nothing of the store's own).
      for (const lease of held) assert.isTrue(yield* store.release(lease.key, lease.token))
      Queue.offerUnsafe(watch, { _tag: "Interrupted" })
      Queue.offerUnsafe(watch, { _tag: "Resumed" })
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(yield* Fiber.joinAll(waiters), ["unheard-1", "unheard-2"])
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
