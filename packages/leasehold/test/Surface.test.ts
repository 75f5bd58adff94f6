/**
 * The public surface kept at 1.0: `withLease` in both forms, `hold`, handles that cannot be forged, and a
 * `LeaseError` recognised across copies of the package.
 */
import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, pipe, Schema, type Scope } from "effect"
import * as leasehold from "leasehold"
import { Lease, LeaseError, LeaseStore } from "leasehold"
import { acquired, failureOf, makeTestLease, reasonOf } from "./support.ts"

describe("Lease.withLease, data-first and data-last", () => {
  it.effect("runs an effect or a function of the lease, in both forms, and releases afterwards", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const fences: Array<bigint> = []
      const work = (lease: Lease.Active) => Effect.sync(() => fences.push(lease.fence))
      assert.strictEqual(yield* Lease.withLease("first", "10 seconds", Effect.succeed("effect")), "effect")
      assert.strictEqual(yield* Lease.withLease("first", "10 seconds", work, { owner: { id: "w1" } }), 1)
      assert.strictEqual(yield* Effect.succeed("piped").pipe(Lease.withLease("first", "10 seconds")), "piped")
      assert.strictEqual(yield* pipe(work, Lease.withLease("first", "10 seconds", { wait: 0 })), 2)
      assert.deepStrictEqual(fences, [2n, 4n])
      assert.isTrue(Option.isNone(yield* Lease.inspect("first")), "every form released its lease")
    }).pipe(Effect.provide(layer))
  })

  it.effect("the data-last form takes the options: wait 0 on a held key fails at once with AcquireTimeout", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const held = acquired(yield* Lease.acquire("busy", "10 seconds", { owner: { id: "w1" } }))
      const ran: Array<string> = []
      const exit = yield* Effect.exit(
        Effect.sync(() => ran.push("work")).pipe(Lease.withLease("busy", "10 seconds", { wait: 0 }))
      )
      const reason = reasonOf(failureOf(exit))
      assert.strictEqual(reason._tag, "AcquireTimeout")
      assert.deepStrictEqual(ran, [])
      assert.strictEqual(
        reason.message,
        'The lease on "busy" is held by holder "w1" (tried once, wait: 0). Retry later, or pass a "wait" to wait for it.'
      )
      assert.isTrue(yield* Lease.release(held))
    }).pipe(Effect.provide(layer))
  })

  it("types: both forms give the work's success, its error and LeaseError, and its requirements plus Lease", () => {
    class Work extends Schema.TaggedError<Work>()("Work", {}) {}
    const work = Effect.fail(new Work()).pipe(Effect.as(1))
    const ofLease = (lease: Lease.Active) => Effect.succeed(lease.fence)

    expectTypeOf(Lease.withLease("k", 1_000, work)).toEqualTypeOf<
      Effect.Effect<number, Work | LeaseError.LeaseError, Lease.Lease>
    >()
    expectTypeOf(Lease.withLease("k", 1_000, ofLease, { wait: 0 })).toEqualTypeOf<
      Effect.Effect<bigint, LeaseError.LeaseError, Lease.Lease>
    >()
    expectTypeOf(work.pipe(Lease.withLease("k", 1_000))).toEqualTypeOf<
      Effect.Effect<number, Work | LeaseError.LeaseError, Lease.Lease>
    >()
    expectTypeOf(pipe(ofLease, Lease.withLease("k", 1_000, { wait: 0 }))).toEqualTypeOf<
      Effect.Effect<bigint, LeaseError.LeaseError, Lease.Lease>
    >()
    expectTypeOf(Lease.hold("k", 1_000)).toEqualTypeOf<
      Effect.Effect<Lease.Active, LeaseError.LeaseError, Lease.Lease | Scope.Scope>
    >()
    // @ts-expect-error the loss hook of withLease is not an option of hold
    Lease.hold("k", 1_000, { onLost: Effect.void })
    // @ts-expect-error nor of withLease
    Lease.withLease("k", 1_000, Effect.void, { onLost: Effect.void })
  })
})

describe("nothing internal is exported", () => {
  it("no tuning constants, no handle constructor, no loss hook", () => {
    const lease: Record<string, unknown> = { ...Lease }
    for (const name of ["driftMillis", "reactionMillis", "Handle", "ScopedOptions", "scoped"]) {
      assert.notProperty(lease, name)
    }
    assert.property(lease, "hold")
    assert.property(lease, "minimumAutoRenewTtl")
    assert.deepStrictEqual(Object.keys(leasehold).sort(), [
      "Fence",
      "Lease",
      "LeaseError",
      "LeaseKey",
      "LeaseObserver",
      "LeaseOwner",
      "LeaseStore",
      "LeaseToken",
      "RedisTransport",
      "TokenSource"
    ])
  })
})

describe("handles cannot be forged", () => {
  it.effect("a copy of a handle, or one built with its constructor, is refused with ForeignLease", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const lease = acquired(yield* Lease.acquire("forge", "10 seconds"))
      const Constructor = lease.constructor as new (fields: Lease.HandleFields) => Lease.Handle
      const forgeries: ReadonlyArray<[string, Lease.Handle]> = [
        ["a spread copy", { ...lease }],
        ["a copy with the same prototype", Object.assign(Object.create(Object.getPrototypeOf(lease)), lease)],
        ["one made with handle.constructor", new Constructor({ ...lease })]
      ]
      for (const [label, forged] of forgeries) {
        const errors = [
          yield* Effect.flip(Lease.renew(forged)),
          yield* Effect.flip(Lease.release(forged)),
          yield* Effect.flip(Lease.checkOwnership(forged))
        ]
        assert.deepStrictEqual(
          errors.map((error) => error.reason._tag),
          ["ForeignLease", "ForeignLease", "ForeignLease"],
          label
        )
      }
      assert.isTrue(yield* Lease.checkOwnership(lease), "the genuine handle still holds the key")
      const renewed = Option.getOrThrow(yield* Lease.renew(lease))
      assert.include(JSON.stringify(renewed), '"token":"<redacted>"')
      assert.isTrue(yield* Lease.release(renewed), "a renewed handle is genuine too")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a genuine handle of another store is refused with ForeignLease", () => {
    const { layer } = makeTestLease()
    const other = Lease.layer.pipe(Layer.provide(LeaseStore.layerMemory))
    return Effect.gen(function* () {
      const lease = acquired(yield* Lease.acquire("elsewhere", "10 seconds"))
      const error = yield* Effect.flip(Lease.release(lease).pipe(Effect.provide(other)))
      assert.strictEqual(error.reason._tag, "ForeignLease")
      assert.isTrue(yield* Lease.release(lease))
    }).pipe(Effect.provide(layer))
  })
})

describe("LeaseError identity", () => {
  const reasons: ReadonlyArray<[LeaseError.LeaseErrorReason, boolean]> = [
    [new LeaseError.InvalidKey({ key: "", problem: "it is empty" }), false],
    [new LeaseError.InvalidTtl({ ttl: "0", problem: "it is not positive" }), false],
    [new LeaseError.InvalidToken({ problem: "it is short" }), false],
    [new LeaseError.InvalidOwner({ problem: "no id" }), false],
    [new LeaseError.InvalidOption({ option: "wait", problem: "negative" }), false],
    [new LeaseError.ForeignLease({ key: "k", operation: "renew" }), false],
    [new LeaseError.AcquireTimeout({ key: "k", waited: Duration.seconds(1) }), true],
    [new LeaseError.ReentrantAcquire({ key: "k", fence: 1n }), false],
    [new LeaseError.LeaseLost({ key: "k", because: "stolen", fence: 1n }), true],
    [new LeaseError.StoreUnavailable({ operation: "renew", key: "k", cause: new Error("down") }), true]
  ]

  it("isRetryable: true where trying again may succeed, never for bad input; LeaseError delegates", () => {
    for (const [reason, retryable] of reasons) {
      assert.strictEqual(reason.isRetryable, retryable, reason._tag)
      assert.strictEqual(LeaseError.make(reason).isRetryable, retryable, reason._tag)
      assert.isTrue(LeaseError.isLeaseErrorReason(reason), reason._tag)
      assert.isFalse(LeaseError.isLeaseError(reason), reason._tag)
    }
  })

  it("an error made by another copy of leasehold passes isLeaseError, which does not rely on instanceof", () => {
    // What a second copy of the module makes: another class, the same TypeId key.
    class OtherCopyLeaseError extends Error {
      readonly "~leasehold/LeaseError" = "~leasehold/LeaseError"
      readonly _tag = "LeaseError"
      readonly reason = { "~leasehold/LeaseError/Reason": "~leasehold/LeaseError/Reason", _tag: "AcquireTimeout" }
    }
    const foreign = new OtherCopyLeaseError("held")
    assert.isFalse(foreign instanceof LeaseError.LeaseError)
    assert.isTrue(LeaseError.isLeaseError(foreign))
    assert.isTrue(LeaseError.isLeaseErrorReason(foreign.reason))
    assert.isFalse(LeaseError.isLeaseError(new Error("not a lease error")))
    assert.isFalse(LeaseError.isLeaseError({ _tag: "LeaseError" }))
    assert.isFalse(LeaseError.isLeaseError(undefined))
  })

  it.effect("the tag stays LeaseError: catchReason picks a reason out of it", () => {
    const { layer } = makeTestLease()
    return Effect.gen(function* () {
      const held = acquired(yield* Lease.acquire("caught", "10 seconds"))
      const result = yield* Lease.withLease("caught", "10 seconds", Effect.succeed("ran"), { wait: 0 }).pipe(
        Effect.catchReason("LeaseError", "AcquireTimeout", (timeout) => Effect.succeed(`busy: ${timeout.key}`))
      )
      assert.strictEqual(result, "busy: caught")
      assert.isTrue(yield* Lease.release(held))
    }).pipe(Effect.provide(layer))
  })
})
