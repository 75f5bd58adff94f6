import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Lease, type LeaseError } from "leasehold"
import { failureOf, makeTestLease, reasonOf } from "./support.ts"

/**
 * The value of `effect`, which must succeed while the TestClock stands still: a nested acquire that waited would
 * wait for its budget (the TTL, 300 ms here) for ever. A second of real time bounds the test instead.
 */
const endsAtOnce = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    const exit = yield* Fiber.await(fiber).pipe(Effect.timeoutOption("1 second"), TestClock.withLive)
    assert.isTrue(Option.isSome(exit), "it ended before any wait budget could run out")
    const ended = Option.getOrThrow(exit)
    if (!Exit.isSuccess(ended)) throw new Error(`expected a success, got ${String(ended)}`)
    return ended.value
  })

/** The reason of the `LeaseError` an exit failed with. */
const reasonOfExit = <A>(exit: Exit.Exit<A, unknown>) => reasonOf(failureOf(exit))

const assertReentrant = (reason: LeaseError.LeaseErrorReason, key: string, fence: bigint) => {
  assert.strictEqual(reason._tag, "ReentrantAcquire")
  if (reason._tag !== "ReentrantAcquire") return
  assert.strictEqual(reason.key, key)
  assert.strictEqual(reason.fence, fence)
  assert.isFalse(reason.isRetryable)
  assert.include(reason.message, "Leases are not reentrant")
}

describe("Lease nesting: leases are not reentrant (memory store, TestClock)", () => {
  it.effect(
    "withLease inside withLease of the same key, in the same fiber, fails at once with ReentrantAcquire",
    () => {
      const { layer, count } = makeTestLease()
      return Effect.gen(function* () {
        const { outer, inner } = yield* endsAtOnce(
          Lease.withLease("nested", 300, (outer) =>
            Effect.exit(Lease.withLease("nested", 300, Effect.succeed("inner ran"))).pipe(
              Effect.map((inner) => ({ outer: outer.fence, inner }))
            )
          )
        )
        assertReentrant(reasonOfExit(inner), "nested", outer)
        assert.strictEqual(count("acquire"), 1, "the nested acquire sent nothing to the store")
        assert.isTrue(Option.isNone(yield* Lease.inspect("nested")), "the outer lease was released")
      }).pipe(Effect.provide(layer))
    }
  )

  it.effect("hold inside hold, and withLease under a hold, of the same key fail at once, whatever the wait", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const { fence, again, under } = yield* endsAtOnce(
        Effect.scoped(
          Effect.gen(function* () {
            const outer = yield* Lease.hold("held", 300)
            const again = yield* Effect.exit(Lease.hold("held", 300, { wait: "10 seconds" }))
            const under = yield* Effect.exit(Lease.withLease("held", 300, Effect.void, { wait: 0 }))
            return { fence: outer.fence, again, under }
          })
        )
      )
      assertReentrant(reasonOfExit(again), "held", fence)
      assertReentrant(reasonOfExit(under), "held", fence)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a fiber forked by the holder (from withLease's work or after hold) fails at once too", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const underWithLease = yield* endsAtOnce(
        Lease.withLease("parent", 300, (lease) =>
          Effect.forkChild(
            Effect.flatMap(Effect.forkChild(Lease.withLease("parent", 300, Effect.void)), Fiber.await)
          ).pipe(
            Effect.flatMap(Fiber.join),
            Effect.map((child) => ({ fence: lease.fence, child }))
          )
        )
      )
      assertReentrant(reasonOfExit(underWithLease.child), "parent", underWithLease.fence)

      const underHold = yield* endsAtOnce(
        Effect.scoped(
          Effect.gen(function* () {
            const lease = yield* Lease.hold("parent", 300)
            const child = yield* Effect.forkChild(Effect.scoped(Lease.hold("parent", 300)))
            return { fence: lease.fence, child: yield* Fiber.await(child) }
          })
        )
      )
      assertReentrant(reasonOfExit(underHold.child), "parent", underHold.fence)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a fiber that does not descend from the holder waits as usual and takes the key after the release", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const held = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        Lease.withLease("sibling", 300, (lease) =>
          Deferred.succeed(held, undefined).pipe(Effect.andThen(Effect.sleep(100)), Effect.as(lease.fence))
        )
      )
      yield* Deferred.await(held)
      const sibling = yield* Effect.forkChild(Lease.withLease("sibling", 300, (lease) => Effect.succeed(lease.fence)))
      yield* TestClock.adjust(50)
      assert.isUndefined(sibling.pollUnsafe(), "the sibling waits while the key is held")
      yield* TestClock.adjust(60)
      assert.strictEqual(yield* Fiber.join(holder), 1n)
      assert.strictEqual(yield* Fiber.join(sibling), 2n, "and takes it, next fence, once released")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a fiber forked under a hold that outlives it waits as usual once the hold has ended", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const outlives = yield* Scope.make()
      const go = yield* Deferred.make<void>()
      const later = Deferred.await(go).pipe(
        Effect.andThen(Lease.withLease("outlived", 300, (lease) => Effect.succeed(lease.fence)))
      )
      const first = yield* Lease.withLease("outlived", 300, (lease) =>
        Effect.map(Effect.forkIn(later, outlives), (fiber) => ({ fence: lease.fence, fiber }))
      )
      yield* Deferred.succeed(go, undefined)
      assert.strictEqual(yield* endsAtOnce(Fiber.join(first.fiber)), first.fence + 1n, "it took the key, next fence")
      yield* Scope.close(outlives, Exit.void)
    }).pipe(Effect.provide(layer))
  })

  it.effect("the same fiber takes a key again once its hold has ended; other keys nest freely", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const fences = yield* endsAtOnce(
        Effect.gen(function* () {
          const a = yield* Lease.withLease("again", 300, (lease) => Effect.succeed(lease.fence))
          const b = yield* Lease.withLease("again", 300, (lease) => Effect.succeed(lease.fence))
          const c = yield* Effect.scoped(Effect.map(Lease.hold("again", 300), (lease) => lease.fence))
          const d = yield* Effect.scoped(Effect.map(Lease.hold("again", 300), (lease) => lease.fence))
          const nested = yield* Lease.withLease("outer-key", 300, () =>
            Effect.scoped(
              Effect.gen(function* () {
                const inner = yield* Lease.hold("inner-key", 300)
                const innermost = yield* Lease.withLease("innermost-key", 300, (lease) => Effect.succeed(lease.fence))
                return [inner.fence, innermost]
              })
            )
          )
          return [a, b, c, d, ...nested]
        })
      )
      assert.deepStrictEqual(fences, [1n, 2n, 3n, 4n, 1n, 1n])
    }).pipe(Effect.provide(layer))
  })

  it.effect("holds closed out of order each leave only their own key", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const { firstAgain, secondAgain, secondFence } = yield* endsAtOnce(
        Effect.gen(function* () {
          const first = yield* Scope.make()
          const second = yield* Scope.make()
          // Scope.provide restores the fiber's context when it ends: the holds are remembered beside the fiber too.
          yield* Scope.provide(Lease.hold("first", 300), first)
          const held = yield* Scope.provide(Lease.hold("second", 300), second)
          yield* Scope.close(first, Exit.void)
          const firstAgain = yield* Effect.scoped(Effect.map(Lease.hold("first", 300), (lease) => lease.fence))
          const secondAgain = yield* Effect.exit(Effect.scoped(Lease.hold("second", 300)))
          yield* Scope.close(second, Exit.void)
          return { firstAgain, secondAgain, secondFence: held.fence }
        })
      )
      assert.strictEqual(firstAgain, 2n, "the first key is free to take again once its scope closed")
      assertReentrant(reasonOfExit(secondAgain), "second", secondFence)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a plain acquire, which never waits, of a key the fiber holds answers Held", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const attempt = yield* Lease.withLease("plain", 300, Lease.acquire("plain", 300))
      assert.strictEqual(attempt._tag, "Held")
    }).pipe(Effect.provide(layer))
  })

  it.effect("two Lease services are not related: the second waits for the first's hold as anyone else", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const other = Context.get(yield* Layer.build(Layer.fresh(Lease.layer)), Lease.Lease)
      const outer = yield* Effect.forkChild(
        Lease.withLease("two-services", 300, () =>
          Effect.exit(
            Lease.withLease("two-services", 300, Effect.void, { wait: 50 }).pipe(
              Effect.provideService(Lease.Lease, other)
            )
          )
        )
      )
      yield* TestClock.adjust(49)
      assert.isUndefined(outer.pollUnsafe(), "the other service's acquire waits")
      yield* TestClock.adjust(2)
      const reason = reasonOfExit(yield* Fiber.join(outer))
      assert.strictEqual(reason._tag, "AcquireTimeout", "for as long as its budget, as any waiter would")
    }).pipe(Effect.provide(layer))
  })
})
