import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { RecordingObserver } from "@leasehold/testing"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Result, Schedule, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { Lease, LeaseError, LeaseStore, LeaseToken, TokenSource } from "leasehold"
import { type Faults, failureOf, makeTestLease, reasonOf } from "./support.ts"

const firstToken = LeaseToken.make("test-token-000001")

describe("Lease auto-renew (memory store, TestClock)", () => {
  it.effect("renews exactly every TTL/3 and keeps the lease past its TTL", () => {
    const { layer, count } = makeTestLease()
    return Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(Lease.withLease("renew", 300, Effect.sleep(1_000).pipe(Effect.as("done"))))
      yield* TestClock.adjust(99)
      assert.strictEqual(count("renew"), 0)
      yield* TestClock.adjust(1)
      assert.strictEqual(count("renew"), 1)
      yield* TestClock.adjust(250)
      assert.strictEqual(count("renew"), 3)
      yield* TestClock.adjust(600)
      assert.strictEqual(count("renew"), 9)
      const info = Option.getOrThrow(yield* Lease.inspect("renew"))
      assert.isTrue(Duration.toMillis(info.remaining) > 200, "still held at 950 ms with a 300 ms TTL")
      yield* TestClock.adjust(50)
      assert.strictEqual(yield* Fiber.join(fiber), "done")
      assert.isTrue(Option.isNone(yield* Lease.inspect("renew")))
    }).pipe(Effect.provide(layer))
  })

  it.effect(
    "a renew that never answers: the work is interrupted with LeaseLost at the local deadline, before the store's expiry",
    () => {
      const { layer } = makeTestLease(() => ({ renew: () => Effect.never }))
      return Effect.gen(function* () {
        const store = yield* LeaseStore.LeaseStore
        const storeTtlLeftAtInterrupt = yield* Deferred.make<number>()
        const fiber = yield* Effect.forkChild(
          Lease.withLease(
            "stuck",
            300,
            Effect.never.pipe(
              Effect.onInterrupt(() =>
                store.inspect("stuck" as never).pipe(
                  Effect.flatMap((snapshot) =>
                    Deferred.succeed(storeTtlLeftAtInterrupt, Option.getOrThrow(snapshot).remainingMillis)
                  ),
                  Effect.orDie
                )
              )
            )
          )
        )
        // validUntil = 300 - (300 * 1% + 2 ms) = 295 ms after the acquire was sent; the renew loop gives up
        // reactionMillis (10 ms) before that, at 285 ms, so the interruption lands while the store still holds it.
        yield* TestClock.adjust(284)
        assert.isFalse(yield* Deferred.isDone(storeTtlLeftAtInterrupt))
        yield* TestClock.adjust(1)
        const exit = yield* Fiber.await(fiber)
        const reason = reasonOf(failureOf(exit))
        assert.strictEqual(reason._tag, "LeaseLost")
        assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "store-unavailable")
        assert.include(reason.message, "no renew was confirmed before the lease's local validity deadline")
        assert.strictEqual(
          yield* Deferred.await(storeTtlLeftAtInterrupt),
          15,
          "interrupted 15 ms before the store's expiry"
        )
      }).pipe(Effect.provide(layer))
    }
  )

  it.effect("another token holding the key at renew time: LeaseLost 'stolen'", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(Lease.withLease("stolen", 300, Effect.never))
      yield* TestClock.adjust(1)
      const store = yield* LeaseStore.LeaseStore
      assert.isTrue(yield* store.release("stolen" as never, firstToken))
      const thief = yield* Lease.acquire("stolen", "10 seconds")
      assert.strictEqual(thief._tag, "Acquired")
      yield* TestClock.adjust(99)
      const reason = reasonOf(failureOf(yield* Fiber.await(fiber)))
      assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "stolen")
      assert.strictEqual(reason._tag === "LeaseLost" && reason.fence, 1n)
      assert.isTrue(thief._tag === "Acquired" && (yield* Lease.checkOwnership(thief.lease)), "the thief keeps it")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a key gone from the store at renew time: LeaseLost 'expired', reported to the observer", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(Lease.withLease("gone", 300, Effect.never))
      yield* TestClock.adjust(1)
      const store = yield* LeaseStore.LeaseStore
      assert.isTrue(yield* store.release("gone" as never, firstToken))
      yield* TestClock.adjust(99)
      const reason = reasonOf(failureOf(yield* Fiber.await(fiber)))
      assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "expired")
      const recorder = yield* RecordingObserver.Recorder
      const lost = yield* recorder.waitFor((event) => event._tag === "lost")
      assert.strictEqual(lost._tag === "lost" && lost.because, "expired")
    }).pipe(Effect.provide(layer))
  })

  it.effect("failed renew attempts are retried until one lands before the deadline", () => {
    let failuresLeft = 3
    const { layer, count } = makeTestLease((memory) => ({
      renew: (key, token, ttl) =>
        failuresLeft-- > 0
          ? Effect.fail(
              LeaseError.make(new LeaseError.StoreUnavailable({ operation: "renew", key, cause: new Error("flaky") }))
            )
          : memory.renew(key, token, ttl)
    }))
    return Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(Lease.withLease("flaky", 300, Effect.sleep(400).pipe(Effect.as("kept"))))
      yield* TestClock.adjust(400)
      assert.strictEqual(yield* Fiber.join(fiber), "kept")
      assert.isTrue(count("renew") >= 4)
      const events = yield* (yield* RecordingObserver.Recorder).events
      assert.strictEqual(events.filter((e) => e._tag === "renewFailed").length, 3)
      assert.isFalse(events.some((e) => e._tag === "lost"))
    }).pipe(Effect.provide(layer))
  })

  it.effect(
    "failed renews come closer together as the deadline nears: a store back 60 ms before it keeps the lease",
    () => {
      const down = { now: true }
      const { layer } = makeTestLease((memory) => ({
        renew: (key, token, ttl) =>
          down.now
            ? Effect.fail(
                LeaseError.make(new LeaseError.StoreUnavailable({ operation: "renew", key, cause: new Error("down") }))
              )
            : memory.renew(key, token, ttl)
      }))
      return Effect.gen(function* () {
        const fiber = yield* Effect.forkChild(
          Lease.withLease("nearly", 3_000, Effect.sleep(4_000).pipe(Effect.as("kept")))
        )
        // Renews fail from the first (at 1 s) on; the deadline is 3000 - 32 (drift) - 10 (reaction) = 2958 ms.
        yield* TestClock.adjust(2_900)
        down.now = false
        yield* TestClock.adjust(1_100)
        assert.strictEqual(yield* Fiber.join(fiber), "kept")
        const events = yield* (yield* RecordingObserver.Recorder).events
        assert.isFalse(events.some((e) => e._tag === "lost"))
        // 10 ms doubling, then at most an eighth of the time left: about 20 tries in the 1.9 s outage, not a loop.
        const failed = events.filter((e) => e._tag === "renewFailed").length
        assert.isTrue(failed >= 10 && failed <= 40, `${failed} failed renews`)
      }).pipe(Effect.provide(layer))
    }
  )

  it.effect("hold: a lost lease interrupts the fiber that acquired it and exposes the reason", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const active = yield* Deferred.make<Lease.Active>()
      const fiber = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            yield* Deferred.succeed(active, yield* Lease.hold("held", 300))
            return yield* Effect.never
          })
        )
      )
      const held = yield* Deferred.await(active)
      const store = yield* LeaseStore.LeaseStore
      yield* store.release("held" as never, firstToken)
      yield* TestClock.adjust(100)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.hasInterrupts(exit))
      const lost = yield* held.lost
      assert.strictEqual(lost.because, "expired")
      assert.strictEqual(lost.key, "held")
    }).pipe(Effect.provide(layer))
  })
})

describe("Lease after a stall of the whole process (memory store, real clock)", () => {
  it.live("ensureValid refuses the next protected step once the event loop was blocked past the deadline", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const steps: Array<string> = []
      const exit = yield* Effect.exit(
        Lease.withLease("stall", 150, (lease) =>
          Effect.gen(function* () {
            yield* lease.ensureValid
            steps.push("before the stall")
            const until = performance.now() + 300
            while (performance.now() < until) {
              // a synchronous stall: a long GC pause or a blocked event loop
            }
            yield* lease.ensureValid
            steps.push("after the stall")
          })
        )
      )
      assert.deepStrictEqual(steps, ["before the stall"])
      const reason = reasonOf(failureOf(exit))
      // The same condition as the renewer's missed deadline, reported the same way.
      assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "store-unavailable")
      assert.include(reason.message, "no renew was confirmed before the lease's local validity deadline")
    }).pipe(Effect.provide(layer))
  })

  it.live("a lease past its local deadline is released in the background: the caller does not wait for it", () => {
    const RELEASE_MILLIS = 500
    const { layer, count } = makeTestLease((memory) => ({
      release: (key, token) => Effect.andThen(Effect.sleep(RELEASE_MILLIS), memory.release(key, token))
    }))
    return Effect.gen(function* () {
      let stallEnded = 0
      const exit = yield* Effect.exit(
        Lease.withLease("stall-release", 150, (lease) =>
          Effect.gen(function* () {
            const until = performance.now() + 300
            while (performance.now() < until) {
              // a synchronous stall past the deadline, before the renewer can notice
            }
            stallEnded = performance.now()
            yield* lease.ensureValid
          })
        )
      )
      const returned = performance.now() - stallEnded
      assert.strictEqual(reasonOf(failureOf(exit))._tag, "LeaseLost")
      assert.isBelow(returned, RELEASE_MILLIS / 2, `LeaseLost came ${returned} ms after the stall`)
      const recorder = yield* RecordingObserver.Recorder
      const released = yield* recorder.waitFor((event) => event._tag === "released")
      const releasedAfter = performance.now() - stallEnded
      // By then the key had expired in the store (its TTL is shorter than the stall): `wasHeld` is false.
      assert.strictEqual(released._tag, "released", "the release still ran")
      assert.isAtLeast(releasedAfter, RELEASE_MILLIS - 5, `in the background: ${releasedAfter} ms after the stall`)
      assert.strictEqual(count("release"), 1)
    }).pipe(Effect.provide(layer))
  })
})

describe("Lease renewals of many leases (memory store, TestClock)", () => {
  it.effect("leases due within a tenth of their interval are renewed together; each still every TTL/3", () => {
    const { layer, calls } = makeTestLease()
    const batches = () => calls.filter((call) => call.op === "renewMany").map((call) => call.key)
    return Effect.gen(function* () {
      const hold = (key: string) =>
        Effect.forkChild(Lease.withLease(key, 300, Effect.never), { startImmediately: true })
      yield* hold("a")
      yield* TestClock.adjust(5)
      yield* hold("b")
      yield* TestClock.adjust(25)
      yield* hold("c")
      yield* TestClock.adjust(70)
      // at 100 ms "a" is due, and "b" (due at 105 ms, within 10 ms) joins it; "c" is due at 130 ms
      assert.deepStrictEqual(batches(), ["a,b"])
      yield* TestClock.adjust(30)
      assert.deepStrictEqual(batches(), ["a,b", "c"])
      yield* TestClock.adjust(70)
      assert.deepStrictEqual(batches(), ["a,b", "c", "a,b"])
      assert.strictEqual(calls.filter((call) => call.op === "renew").length, 5)
    }).pipe(Effect.provide(layer))
  })

  it.effect(
    "a lease added while the renewer sleeps is renewed on its own schedule, sooner or later than the rest",
    () => {
      const { layer, calls } = makeTestLease()
      const renewsOf = (key: string) => calls.filter((call) => call.op === "renew" && call.key === key).length
      return Effect.gen(function* () {
        const hold = (key: string, ttl: number) =>
          Effect.forkChild(Lease.withLease(key, ttl, Effect.never), { startImmediately: true })
        // The renewer sleeps until "slow" is due at 1,000 ms; "fast" is due at 100 ms, so adding it must wake it.
        yield* hold("slow", 3_000)
        yield* TestClock.adjust(10)
        yield* hold("fast", 300)
        yield* TestClock.adjust(100)
        assert.deepStrictEqual([renewsOf("fast"), renewsOf("slow")], [1, 0])
        // Now it sleeps until "fast" is due again (210 ms); "late" is due at 1,110 ms, later: no wake-up is needed.
        yield* hold("late", 3_000)
        yield* TestClock.adjust(900)
        assert.deepStrictEqual([renewsOf("slow"), renewsOf("late")], [1, 0])
        yield* TestClock.adjust(100)
        assert.deepStrictEqual([renewsOf("fast"), renewsOf("slow"), renewsOf("late")], [11, 1, 1])
      }).pipe(Effect.provide(layer))
    }
  )

  it.effect("one lease's lost renewal does not hold up the others", () => {
    const { layer } = makeTestLease((memory) => ({
      renew: (key, token, ttl) => (key === "stuck" ? Effect.never : memory.renew(key, token, ttl))
    }))
    return Effect.gen(function* () {
      const stuck = yield* Effect.forkChild(Lease.withLease("stuck", 300, Effect.never), { startImmediately: true })
      const fine = yield* Effect.forkChild(
        Lease.withLease("fine", 3_000, Effect.sleep(2_000).pipe(Effect.as("kept"))),
        {
          startImmediately: true
        }
      )
      yield* TestClock.adjust(300)
      const reason = reasonOf(failureOf(yield* Fiber.await(stuck)))
      assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "store-unavailable")
      yield* TestClock.adjust(1_700)
      assert.strictEqual(yield* Fiber.join(fine), "kept")
    }).pipe(Effect.provide(layer))
  })
})

describe("Lease scope and interruption (memory store, TestClock)", () => {
  it.effect("on scope close the renewals stop first, then the release; none run afterwards", () => {
    const { layer, calls } = makeTestLease()
    return Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(Lease.withLease("order", 300, Effect.sleep(150)))
      yield* TestClock.adjust(150)
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        calls.map((call) => call.op),
        ["acquire", "renewMany", "renew", "release"]
      )
      yield* TestClock.adjust(Duration.seconds(10))
      assert.strictEqual(calls.length, 4)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a failed release never replaces the work's success or failure, and is reported", () => {
    const { layer } = makeTestLease(() => ({
      release: (key) =>
        Effect.fail(
          LeaseError.make(new LeaseError.StoreUnavailable({ operation: "release", key, cause: new Error("down") }))
        )
    }))
    return Effect.gen(function* () {
      assert.strictEqual(yield* Lease.withLease("release-fails", 300, Effect.succeed(42)), 42)
      const failed = yield* Effect.flip(Lease.withLease("release-fails-2", 300, Effect.fail("boom" as const)))
      assert.strictEqual(failed, "boom")
      const events = yield* (yield* RecordingObserver.Recorder).events
      assert.strictEqual(events.filter((e) => e._tag === "releaseFailed").length, 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("interrupting the holder releases the lease and stops its renewals", () => {
    const { layer, count } = makeTestLease()
    return Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(
        Lease.withLease("holder", 300, Deferred.succeed(started, void 0).pipe(Effect.andThen(Effect.never)))
      )
      yield* Deferred.await(started)
      yield* TestClock.adjust(150)
      assert.strictEqual(count("renew"), 1)
      yield* Fiber.interrupt(fiber)
      assert.isTrue(Option.isNone(yield* Lease.inspect("holder")))
      yield* TestClock.adjust(Duration.seconds(10))
      assert.strictEqual(count("renew"), 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("interrupting a waiter removes it: it never takes the key afterwards", () => {
    const { layer, count } = makeTestLease()
    return Effect.gen(function* () {
      const holder = yield* Lease.acquire("queue", "10 seconds", { owner: { id: "holder" } })
      const waiter = yield* Effect.forkChild(Lease.withLease("queue", 300, Effect.never, { wait: "5 seconds" }))
      const recorder = yield* RecordingObserver.Recorder
      yield* recorder.waitFor((event) => event._tag === "contended")
      yield* TestClock.adjust(100)
      yield* Fiber.interrupt(waiter)
      const attempts = count("acquire")
      assert.isTrue(holder._tag === "Acquired" && (yield* Lease.release(holder.lease)))
      yield* TestClock.adjust(Duration.seconds(10))
      assert.strictEqual(count("acquire"), attempts)
      assert.isTrue(Option.isNone(yield* Lease.inspect("queue")))
    }).pipe(Effect.provide(layer))
  })

  it.effect("interrupting an acquire whose reply is in flight releases what it may have taken", () => {
    const { layer } = makeTestLease((memory) => ({
      acquire: (key, token, ttl, owner) =>
        memory.acquire(key, token, ttl, owner).pipe(Effect.tap(() => Effect.sleep(10)))
    }))
    return Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(Lease.acquire("in-flight", "10 seconds"))
      yield* TestClock.adjust(5)
      assert.isTrue(Option.isSome(yield* Lease.inspect("in-flight")), "the store took the lock")
      yield* Fiber.interrupt(fiber)
      assert.isTrue(Option.isNone(yield* Lease.inspect("in-flight")), "and the interrupted acquire gave it back")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a waiter takes the key after the holder releases it, with the next fence", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const holder = yield* Lease.acquire("handoff", "10 seconds")
      const waiter = yield* Effect.forkChild(
        Lease.withLease("handoff", 300, (lease) => Effect.succeed(lease.fence), { wait: "5 seconds" })
      )
      yield* TestClock.adjust(20)
      assert.isTrue(holder._tag === "Acquired" && (yield* Lease.release(holder.lease)))
      yield* TestClock.adjust(100)
      assert.strictEqual(yield* Fiber.join(waiter), 2n)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a crashed holder's key is taken when its TTL runs out", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      yield* Lease.acquire("crashed", 500)
      const waiter = yield* Effect.forkChild(
        Lease.withLease("crashed", 300, (lease) => Effect.succeed(lease.fence), { wait: "2 seconds" })
      )
      yield* TestClock.adjust(499)
      assert.isTrue(Option.isSome(yield* Lease.inspect("crashed")))
      yield* TestClock.adjust(60)
      assert.strictEqual(yield* Fiber.join(waiter), 2n)
    }).pipe(Effect.provide(layer))
  })
})

describe("Lease waiting budget (memory store, TestClock)", () => {
  it.effect("AcquireTimeout after the wait budget, naming the holder and the time waited", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      yield* Lease.acquire("busy", "10 seconds", { owner: { id: "holder-7", host: "box" } })
      const waiter = yield* Effect.forkChild(Lease.withLease("busy", 300, Effect.void, { wait: "200 millis" }))
      yield* TestClock.adjust(199)
      yield* TestClock.adjust(60)
      const reason = reasonOf(failureOf(yield* Fiber.await(waiter)))
      assert.strictEqual(reason._tag, "AcquireTimeout")
      if (reason._tag !== "AcquireTimeout") return
      assert.strictEqual(reason.key, "busy")
      assert.strictEqual(reason.holder?.id, "holder-7")
      assert.isTrue(Duration.toMillis(reason.waited) >= 200, `waited ${Duration.format(reason.waited)}`)
      assert.match(reason.message, /holder "holder-7"/)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a try slower than the budget ends with the budget; one within a stated bound runs to its end", () =>
    Effect.gen(function* () {
      // The store takes 1 s to answer an acquire, and says so (maxOperationMillis).
      const slow: Faults = (store) => ({
        maxOperationMillis: 1_000,
        acquire: (...args) => Effect.delay(store.acquire(...args), "1 second")
      })
      for (const statedBound of [undefined, 1_000]) {
        const { layer } = makeTestLease((store) => ({ ...slow(store), maxOperationMillis: statedBound }))
        yield* Effect.gen(function* () {
          // A budget shorter than a try: the try is cut at the budget, whether or not the store states its bound.
          const short = yield* Effect.forkChild(Lease.withLease("slow", 300, Effect.void, { wait: "200 millis" }))
          yield* TestClock.adjust(201)
          assert.strictEqual(reasonOf(failureOf(yield* Fiber.await(short)))._tag, "AcquireTimeout")
          // A budget longer than the stated bound: the try runs to its end and acquires.
          const long = yield* Effect.forkChild(
            Lease.withLease("slow-2", 300, Effect.succeed("held"), { wait: "5 seconds" })
          )
          yield* TestClock.adjust(1_001)
          assert.strictEqual(yield* Fiber.join(long), "held")
        }).pipe(Effect.provide(layer))
      }
    })
  )

  it.effect("a reason can be caught on its own with Effect.catchReason", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      yield* Lease.acquire("caught", "10 seconds", { owner: { id: "someone-else" } })
      const handled = yield* Lease.withLease("caught", 300, Effect.succeed("worked"), { wait: 0 }).pipe(
        Effect.catchReason("LeaseError", "AcquireTimeout", (timeout) => Effect.succeed(`busy: ${timeout.holder?.id}`))
      )
      assert.strictEqual(handled, "busy: someone-else")
    }).pipe(Effect.provide(layer))
  })

  it.effect("wait 0 tries once; a Schedule retries as long as it recurs", () => {
    const { layer, count } = makeTestLease()
    return Effect.gen(function* () {
      yield* Lease.acquire("busy", "10 seconds")
      const once = reasonOf(yield* Effect.flip(Lease.withLease("busy", 300, Effect.void, { wait: 0 })))
      assert.strictEqual(once._tag, "AcquireTimeout")
      assert.strictEqual(count("acquire"), 2)
      const waiter = yield* Effect.forkChild(
        Lease.withLease("busy", 300, Effect.void, {
          wait: Schedule.max([Schedule.spaced("10 millis"), Schedule.recurs(3)])
        })
      )
      yield* TestClock.adjust(100)
      const reason = reasonOf(failureOf(yield* Fiber.await(waiter)))
      assert.strictEqual(reason._tag, "AcquireTimeout")
      assert.strictEqual(count("acquire"), 2 + 4)
    }).pipe(Effect.provide(layer))
  })

  it.live("contenders on one key never overlap, and each entry has a higher fence", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      let inside = 0
      let most = 0
      const entries: Array<bigint> = []
      const worker = Lease.withLease(
        "mutex",
        300,
        (lease) =>
          Effect.gen(function* () {
            inside++
            most = Math.max(most, inside)
            entries.push(lease.fence)
            yield* Effect.sleep(2)
            inside--
          }),
        { wait: "10 seconds" }
      )
      yield* Effect.all(
        Array.from({ length: 8 }, () => Effect.all([worker, worker, worker])),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(most, 1)
      assert.strictEqual(entries.length, 24)
      assert.deepStrictEqual(
        entries,
        Array.from({ length: 24 }, (_, i) => BigInt(i + 1))
      )
    }).pipe(Effect.provide(layer))
  })
})

describe("Lease input validation", () => {
  const layer = makeTestLease().layer

  it.effect("bad keys, TTLs, options and owners fail with the reason that names them", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [string, Effect.Effect<unknown, LeaseError.LeaseError, Lease.Lease>]> = [
        ["InvalidKey", Lease.acquire("", "1 second")],
        ["InvalidKey", Lease.acquire("k".repeat(513), "1 second")],
        ["InvalidKey", Lease.acquire("tab\there", "1 second")],
        ["InvalidKey", Lease.inspect("")],
        ["InvalidTtl", Lease.acquire("k", 0)],
        ["InvalidTtl", Lease.acquire("k", -5)],
        ["InvalidTtl", Lease.acquire("k", Number.NaN)],
        ["InvalidTtl", Lease.acquire("k", Number.POSITIVE_INFINITY)],
        ["InvalidTtl", Lease.acquire("k", 1.5)],
        ["InvalidTtl", Lease.acquire("k", "soon" as Duration.Input)],
        ["InvalidTtl", Lease.withLease("k", 50, Effect.void)],
        ["InvalidOption", Lease.withLease("k", 300, Effect.void, { renewEvery: 101 })],
        ["InvalidOption", Lease.withLease("k", 300, Effect.void, { renewEvery: 0 })],
        ["InvalidOption", Lease.withLease("k", 300, Effect.void, { wait: -1 })],
        ["InvalidOwner", Lease.acquire("k", "1 second", { owner: { id: "" } })],
        ["InvalidOwner", Lease.acquire("k", "1 second", { owner: { id: "x", labels: { big: "x".repeat(5000) } } })]
      ]
      for (const [expected, effect] of cases) {
        const reason = reasonOf(yield* Effect.flip(effect))
        assert.strictEqual(reason._tag, expected, reason.message)
        assert.isTrue(reason.message.length > 20)
      }
    }).pipe(Effect.provide(layer))
  )

  it("messages say what was wrong and what is accepted", () => {
    const key = LeaseError.make(new LeaseError.InvalidKey({ key: "", problem: "it is empty" }))
    assert.strictEqual(
      key.message,
      'Invalid lease key "": it is empty. A key is 1 to 512 characters without control characters.'
    )
    const token = LeaseToken.decode("short")
    assert.isTrue(token._tag === "Failure" && /fewer than 16.*\[A-Za-z0-9\._~:-\]/.test(token.failure.message))
    assert.throws(() => LeaseToken.make("has spaces in it, sixteen+"), /outside/)
    assert.strictEqual(LeaseToken.make("abcdefghijklmnop"), "abcdefghijklmnop")
  })

  it.effect("a lease is only renewed or released through the store that granted it", () =>
    Effect.gen(function* () {
      const other = yield* Layer.build(makeTestLease().layer)
      const foreign = yield* Lease.acquire("shared-name", "10 seconds").pipe(Effect.provide(other))
      assert.strictEqual(foreign._tag, "Acquired")
      if (foreign._tag !== "Acquired") return
      const release = reasonOf(yield* Effect.flip(Lease.release(foreign.lease)))
      const renew = reasonOf(yield* Effect.flip(Lease.renew(foreign.lease)))
      assert.strictEqual(release._tag, "ForeignLease")
      assert.strictEqual(renew._tag, "ForeignLease")
      assert.isTrue(yield* Lease.checkOwnership(foreign.lease).pipe(Effect.provide(other)))
    }).pipe(Effect.provide(layer))
  )

  it.effect("a token source that makes malformed tokens fails the acquire with InvalidToken", () =>
    Effect.gen(function* () {
      const bad = Lease.layer.pipe(
        Layer.provide(LeaseStore.layerMemory),
        Layer.provide(TokenSource.layer(TokenSource.fromEffect(Effect.succeed("too-short"))))
      )
      const reason = reasonOf(yield* Effect.flip(Lease.acquire("k", "1 second").pipe(Effect.provide(bad))))
      assert.strictEqual(reason._tag, "InvalidToken")
      assert.notInclude(reason.message, "too-short")
    })
  )

  it.effect("a lease handle never shows its token when printed", () =>
    Effect.gen(function* () {
      const attempt = yield* Lease.acquire("printed", "1 second")
      assert.strictEqual(attempt._tag, "Acquired")
      if (attempt._tag !== "Acquired") return
      const { inspect } = yield* Effect.promise(() => import("node:util"))
      assert.notInclude(JSON.stringify(attempt.lease), attempt.lease.token)
      assert.notInclude(inspect(attempt.lease), attempt.lease.token)
      assert.notInclude(Cause.pretty(Cause.fail(attempt)), attempt.lease.token)
    }).pipe(Effect.provide(layer))
  )
})

describe("Lease tracing", () => {
  it.effect("hold and inspect have spans; acquire and release (one round trip each) do not", () => {
    const { layer } = makeTestLease()
    const names: Array<string> = []
    const tracer = Tracer.make({
      span(options) {
        names.push(options.name)
        return new Tracer.NativeSpan(options)
      }
    })
    return Effect.gen(function* () {
      yield* Effect.scoped(Lease.hold("traced", "10 seconds"))
      yield* Lease.inspect("traced")
      const attempt = yield* Lease.acquire("traced-2", "10 seconds")
      if (attempt._tag === "Acquired") yield* Lease.release(attempt.lease)
      assert.deepStrictEqual(names, ["Lease.hold", "Lease.inspect"])
    }).pipe(Effect.withTracer(tracer), Effect.provide(layer))
  })
})

describe("Lease printing", () => {
  it.effect("a handle and an active lease print without their token (JSON and console)", () => {
    const { layer } = makeTestLease()
    return Effect.scoped(
      Effect.gen(function* () {
        const active = yield* Lease.hold("printed", "10 seconds", { owner: { id: "worker-1" } })
        const handle = yield* active.current
        for (const printed of [JSON.stringify(handle), inspect(handle), JSON.stringify(active), inspect(active)]) {
          assert.notInclude(printed, handle.token)
          assert.include(printed, "printed")
        }
        assert.include(JSON.stringify(handle), '"token":"<redacted>"')
        assert.deepStrictEqual(JSON.parse(JSON.stringify(active)), { _tag: "Active", key: "printed", fence: "1" })
      })
    ).pipe(Effect.provide(layer))
  })
})

describe("TokenSource.secureRandom", () => {
  it.effect("draws distinct 22-character base64url tokens (128 bits each), across refills of its pool", () =>
    Effect.gen(function* () {
      const tokens = new Set<string>()
      for (let i = 0; i < 1_000; i++) tokens.add(yield* TokenSource.secureRandom.newToken)
      assert.strictEqual(tokens.size, 1_000)
      for (const token of tokens) {
        assert.match(token, /^[A-Za-z0-9_-]{22}$/)
        // Lease skips the token check for this source: its tokens must pass it.
        assert.isTrue(Result.isSuccess(LeaseToken.decode(token)), token)
      }
    })
  )
})
