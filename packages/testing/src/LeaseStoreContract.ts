/**
 * The contract every `LeaseStore` keeps, as a vitest suite: run it against the memory store, against Redis, and
 * against any store you write. It drives the store through the `Lease` service, the way programs use it.
 *
 * ```ts
 * import { TestClock } from "effect/testing"
 * import { LeaseStore } from "leasehold"
 * import * as LeaseStoreContract from "@leasehold/testing/LeaseStoreContract"
 *
 * LeaseStoreContract.run("memory", LeaseStore.layerMemory, { elapse: TestClock.adjust })
 * ```
 *
 * @since 0.1.0
 */
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Queue } from "effect"
import { Lease, type LeaseError, LeaseStore, LeaseToken } from "leasehold"

/**
 * How the suite runs against one store.
 * - `elapse`: lets time pass for the store (`TestClock.adjust` for a store on Effect's clock, a real sleep for Redis,
 *   whose expiry is its own).
 * - `excludeTestServices`: run on the real clock (true for Redis).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly elapse: (duration: Duration.Input) => Effect.Effect<void>
  readonly excludeTestServices?: boolean | undefined
}

let counter = 0
const freshKey = (label: string): string => `contract:${label}:${process.pid}:${++counter}:${Date.now()}`

const acquired = (attempt: Lease.LeaseAttempt): Lease.Handle => {
  if (attempt._tag !== "Acquired") throw new Error(`expected Acquired, got ${attempt._tag}`)
  return attempt.lease
}

/** A token that never holds anything: what a caller who guessed wrong would send to the store. */
const forgedToken = LeaseToken.make("forged-token-0000000000")

const reasonOf = (error: LeaseError.LeaseError): string => error.reason._tag

/**
 * Declares the contract suite for the store that `storeLayer` provides.
 *
 * @category suites
 * @since 0.1.0
 */
export const run = <E>(name: string, storeLayer: Layer.Layer<LeaseStore.LeaseStore, E>, options: Options): void =>
  layer(Lease.layer.pipe(Layer.provideMerge(storeLayer)), {
    excludeTestServices: options.excludeTestServices ?? false
  })(`LeaseStore contract: ${name}`, (it) => {
    it.effect("acquires a free key: fence 1, the owner stored, the TTL set in the store", () =>
      Effect.gen(function* () {
        const key = freshKey("free")
        const lease = acquired(yield* Lease.acquire(key, "10 seconds", { owner: { id: "worker-1", pid: 42 } }))
        assert.strictEqual(lease.key, key)
        assert.strictEqual(lease.fence, 1n)
        assert.strictEqual(Duration.toMillis(lease.ttl), 10_000)
        assert.deepStrictEqual(Option.getOrUndefined(lease.owner), { id: "worker-1", pid: 42 })
        const info = Option.getOrThrow(yield* Lease.inspect(key))
        assert.strictEqual(info.fence, 1n)
        assert.deepStrictEqual(Option.getOrUndefined(info.owner), { id: "worker-1", pid: 42 })
        const remaining = Duration.toMillis(info.remaining)
        assert.isTrue(remaining > 9_000 && remaining <= 10_000, `remaining ${remaining} ms`)
      })
    )

    it.effect("a held key answers Held, with the holder's owner and the time it has left", () =>
      Effect.gen(function* () {
        const key = freshKey("held")
        acquired(yield* Lease.acquire(key, "10 seconds", { owner: { id: "first", labels: { role: "writer" } } }))
        const second = yield* Lease.acquire(key, "10 seconds", { owner: { id: "second" } })
        assert.strictEqual(second._tag, "Held")
        if (second._tag !== "Held") return
        assert.strictEqual(second.key, key)
        assert.deepStrictEqual(Option.getOrUndefined(second.owner), { id: "first", labels: { role: "writer" } })
        const remaining = Duration.toMillis(second.remaining)
        assert.isTrue(remaining > 9_000 && remaining <= 10_000, `remaining ${remaining} ms`)
      })
    )

    it.effect("only the owner's token releases, and release is idempotent", () =>
      Effect.gen(function* () {
        const store = yield* LeaseStore.LeaseStore
        const key = freshKey("release")
        const lease = acquired(yield* Lease.acquire(key, "10 seconds"))
        assert.isFalse(yield* store.release(lease.key, forgedToken))
        assert.isFalse(yield* store.isHeld(lease.key, forgedToken))
        assert.isTrue(yield* Lease.checkOwnership(lease))
        assert.isTrue(Option.isSome(yield* Lease.inspect(key)))
        assert.isTrue(yield* Lease.release(lease))
        assert.isFalse(yield* Lease.release(lease))
        assert.isFalse(yield* Lease.checkOwnership(lease))
        assert.isTrue(Option.isNone(yield* Lease.inspect(key)))
      })
    )

    it.effect("fences rise with every acquire and never with a renew", () =>
      Effect.gen(function* () {
        const key = freshKey("fence")
        const fences: Array<bigint> = []
        for (let i = 0; i < 3; i++) {
          const lease = acquired(yield* Lease.acquire(key, "10 seconds"))
          const renewed = Option.getOrThrow(yield* Lease.renew(lease))
          assert.strictEqual(renewed.fence, lease.fence)
          fences.push(lease.fence)
          assert.isTrue(yield* Lease.release(renewed))
        }
        assert.deepStrictEqual(fences, [1n, 2n, 3n])
      })
    )

    it.effect("renew sets a new TTL in the store and moves the local deadline", () =>
      Effect.gen(function* () {
        const store = yield* LeaseStore.LeaseStore
        const key = freshKey("renew")
        const lease = acquired(yield* Lease.acquire(key, "2 seconds"))
        const renewed = Option.getOrThrow(yield* Lease.renew(lease, "20 seconds"))
        assert.strictEqual(Duration.toMillis(renewed.ttl), 20_000)
        assert.isTrue(renewed.validUntil > lease.validUntil)
        const remaining = Duration.toMillis(Option.getOrThrow(yield* Lease.inspect(key)).remaining)
        assert.isTrue(remaining > 19_000, `remaining ${remaining} ms`)
        assert.isFalse(yield* store.release(renewed.key, forgedToken))
        assert.strictEqual(yield* store.renew(renewed.key, forgedToken, 20_000), "stolen")
      })
    )

    it.effect(
      "expiry is the store's: an expired key is free, and its old holder can neither renew nor release it",
      () =>
        Effect.gen(function* () {
          const key = freshKey("expiry")
          const old = acquired(yield* Lease.acquire(key, 150))
          yield* options.elapse(Duration.millis(250))
          assert.isTrue(Option.isNone(yield* Lease.inspect(key)))
          assert.isFalse(yield* Lease.checkOwnership(old))
          assert.isTrue(Option.isNone(yield* Lease.renew(old)))
          const next = acquired(yield* Lease.acquire(key, "10 seconds"))
          assert.strictEqual(next.fence, old.fence + 1n)
          assert.isTrue(Option.isNone(yield* Lease.renew(old)))
          assert.isFalse(yield* Lease.release(old))
          assert.isTrue(yield* Lease.checkOwnership(next))
        })
    )

    it.effect("renewMany renews each lease it can and answers for each, in order", () =>
      Effect.gen(function* () {
        const store = yield* LeaseStore.LeaseStore
        const held = acquired(yield* Lease.acquire(freshKey("many-held"), 2_000))
        const taken = acquired(yield* Lease.acquire(freshKey("many-taken"), "10 seconds"))
        const gone = freshKey("many-gone")
        const replies = yield* store.renewMany([
          { key: held.key, token: held.token, ttlMillis: 20_000 },
          { key: taken.key, token: forgedToken, ttlMillis: 20_000 },
          { key: gone as never, token: held.token, ttlMillis: 20_000 }
        ])
        assert.deepStrictEqual(replies, ["renewed", "stolen", "expired"])
        assert.isTrue(Duration.toMillis(Option.getOrThrow(yield* Lease.inspect(held.key)).remaining) > 19_000)
        assert.isTrue(Duration.toMillis(Option.getOrThrow(yield* Lease.inspect(taken.key)).remaining) <= 10_000)
        assert.isTrue(Option.isNone(yield* Lease.inspect(gone)))
        assert.deepStrictEqual(yield* store.renewMany([]), [])
      })
    )

    it.effect("keys with braces, colons and other scripts are distinct keys", () =>
      Effect.gen(function* () {
        const base = freshKey("shape")
        const keys = [base, `${base}}`, `{${base}`, `${base}}:fence`, `${base}:fence`, `${base} ключ 鍵 🔒`]
        const leases = []
        for (const key of keys) leases.push(acquired(yield* Lease.acquire(key, "10 seconds")))
        for (const lease of leases) {
          assert.strictEqual(lease.fence, 1n)
          assert.isTrue(yield* Lease.checkOwnership(lease))
        }
      })
    )

    it.effect("a release is announced to release watchers; a release by another token or an expiry is not", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* LeaseStore.LeaseStore
          const releases = yield* store.watchReleases
          const key = freshKey("announce")
          const lease = acquired(yield* Lease.acquire(key, "10 seconds"))
          assert.isFalse(yield* store.release(lease.key, forgedToken))
          assert.isTrue(yield* Lease.release(lease))
          const expiring = freshKey("announce-expiry")
          acquired(yield* Lease.acquire(expiring, 100))
          yield* options.elapse(Duration.millis(200))
          const marker = freshKey("announce-marker")
          assert.isTrue(yield* Lease.release(acquired(yield* Lease.acquire(marker, "10 seconds"))))
          const heard: Array<LeaseStore.ReleaseEvent> = []
          while (!heard.some((event) => event._tag === "Released" && event.key === marker)) {
            // Bounded for a store on the real clock (under a TestClock a store must announce synchronously).
            heard.push(yield* Queue.take(releases).pipe(Effect.timeout("5 seconds")))
          }
          assert.deepStrictEqual(
            heard,
            [
              { _tag: "Released", key, fence: lease.fence },
              { _tag: "Released", key: marker, fence: 1n }
            ],
            "each announcement names the released key and the lease's fence"
          )
        })
      )
    )

    it.effect("a release watch ends with the scope that opened it", () =>
      Effect.gen(function* () {
        const store = yield* LeaseStore.LeaseStore
        const releases = yield* Effect.scoped(store.watchReleases)
        const key = freshKey("announce-closed")
        assert.isTrue(yield* Lease.release(acquired(yield* Lease.acquire(key, "10 seconds"))))
        assert.isTrue(Option.isNone(yield* Queue.poll(releases)), "a closed watch hears nothing")
      })
    )

    it.effect("bad input never reaches the store: typed reasons for keys and TTLs", () =>
      Effect.gen(function* () {
        const failures = [
          yield* Effect.flip(Lease.acquire("", "1 second")),
          yield* Effect.flip(Lease.acquire("x".repeat(513), "1 second")),
          yield* Effect.flip(Lease.acquire("bad\nkey", "1 second")),
          yield* Effect.flip(Lease.acquire(freshKey("ttl"), 0)),
          yield* Effect.flip(Lease.acquire(freshKey("ttl"), Number.NaN))
        ]
        assert.deepStrictEqual(failures.map(reasonOf), [
          "InvalidKey",
          "InvalidKey",
          "InvalidKey",
          "InvalidTtl",
          "InvalidTtl"
        ])
      })
    )
  })

/**
 * The suite's helpers, for store tests of their own: unique keys, unwrapping `Acquired`, a token that holds nothing
 * (for the store's own operations: leasehold refuses a hand-made handle before it reaches the store).
 *
 * @category helpers
 * @since 0.1.0
 */
export const helpers = { freshKey, acquired, forgedToken }
