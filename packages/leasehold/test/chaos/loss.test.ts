import { assert, describe, layer } from "@effect/vitest"
import { RedisFaults, RedisTestServer, TcpProxy } from "@leasehold/testing"
import { Effect, Exit, Fiber, Scope } from "effect"
import { Lease } from "leasehold"
import { freshKey, leaseClientOn, nowMillis, reasonOf } from "./support.ts"

const TTL = 1_000
const COMMAND_TIMEOUT = 1_000
/** "At once": well under the command timeout that a release on the caller's path would wait for. */
const PROMPT = 100

/**
 * A `Lease` service over `url` whose layer has a scope of its own (closed by the test, to time it), over a client
 * that lives as long as the test's scope.
 */
const leaseWithClosableLayer = (url: string) =>
  Effect.gen(function* () {
    const client = yield* RedisTestServer.connectDisposable(url)
    const layerScope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(layerScope, Exit.void))
    const leases = yield* leaseClientOn(client, { commandTimeout: `${COMMAND_TIMEOUT} millis` }).pipe(
      Scope.provide(layerScope)
    )
    return {
      ...leases,
      /** Closes the lease layer; how long that took. */
      closeLayer: Effect.gen(function* () {
        const start = yield* nowMillis
        yield* Scope.close(layerScope, Exit.void)
        return (yield* nowMillis) - start
      })
    }
  })

/** Work that makes Redis unreachable (`cutOff`), then runs until it is interrupted; `at.interrupted` says when. */
const workThatCutsOff = (cutOff: Effect.Effect<void>, at: { interrupted: number }) =>
  Effect.andThen(cutOff, Effect.never).pipe(
    Effect.onInterrupt(() =>
      Effect.map(nowMillis, (now) => {
        at.interrupted = now
      })
    )
  )

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: a lost lease is reported at once", () => {
  layer(RedisFaults.layer, { excludeTestServices: true })("loss", (it) => {
    it.effect(
      "a paused Redis: withLease fails with LeaseLost right after the interrupt, the release does not wait on its path, and the layer still closes",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const holder = yield* leaseWithClosableLayer(redis.url)
            const pause = yield* Scope.make()
            yield* Effect.addFinalizer(() => Scope.close(pause, Exit.void))
            const at = { interrupted: 0 }
            const exit = yield* Effect.exit(
              holder.run(
                Lease.withLease(freshKey("paused"), TTL, workThatCutsOff(Scope.provide(redis.pause, pause), at))
              )
            )
            const failedAt = yield* nowMillis
            const reason = reasonOf(exit)
            assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "store-unavailable")
            const lost = yield* holder.recorder.waitFor((event) => event._tag === "lost")
            assert.strictEqual(lost._tag === "lost" && lost.because, "store-unavailable")
            assert.isAbove(at.interrupted, 0, "the work was interrupted")
            const reported = failedAt - at.interrupted
            assert.isBelow(reported, PROMPT, `LeaseLost reached the caller ${reported} ms after the interrupt`)

            // The store's close waits for its release still in the client at most until that command's bound.
            const closeTook = yield* holder.closeLayer
            assert.isBelow(
              closeTook,
              COMMAND_TIMEOUT + PROMPT,
              `the layer closed in ${closeTook} ms with the release still in flight`
            )
            // Past the release's own bound: had it outlived the layer, it would have reported its failure by now.
            yield* Effect.sleep(COMMAND_TIMEOUT + 200)
            const events = yield* holder.recorder.events
            assert.isFalse(
              events.some((event) => event._tag === "released" || event._tag === "releaseFailed"),
              "the release in the background was stopped with the layer, before its command timeout"
            )
          })
        )
    )

    it.effect(
      "a blackholed connection: withLease fails with LeaseLost right after the interrupt; the release is tried in the background, bounded",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const redis = yield* RedisFaults.RedisFaults
            const proxy = yield* TcpProxy.make({ host: redis.host, port: redis.port })
            const holder = yield* leaseWithClosableLayer(proxy.url)
            const at = { interrupted: 0 }
            const exit = yield* Effect.exit(
              holder.run(Lease.withLease(freshKey("blackholed"), TTL, workThatCutsOff(proxy.blackhole, at)))
            )
            const failedAt = yield* nowMillis
            const reason = reasonOf(exit)
            assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "store-unavailable")
            const reported = failedAt - at.interrupted
            assert.isBelow(reported, PROMPT, `LeaseLost reached the caller ${reported} ms after the interrupt`)

            // Left to itself, the release in the background ends at the store's command timeout.
            const failed = yield* holder.recorder.waitFor((event) => event._tag === "releaseFailed")
            const releaseEnded = (yield* nowMillis) - at.interrupted
            assert.strictEqual(failed._tag === "releaseFailed" && failed.error.reason._tag, "StoreUnavailable")
            assert.isAtLeast(releaseEnded, COMMAND_TIMEOUT - 50, `the release was tried: ${releaseEnded} ms`)
            assert.isBelow(releaseEnded, COMMAND_TIMEOUT + 500, `the release was bounded: ${releaseEnded} ms`)
            const closeTook = yield* holder.closeLayer
            assert.isBelow(closeTook, PROMPT, `the layer closed in ${closeTook} ms`)
          })
        )
    )

    it.effect("hold: after a loss the scope closes at once, without waiting for the release", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const redis = yield* RedisFaults.RedisFaults
          const holder = yield* leaseWithClosableLayer(redis.url)
          const pause = yield* Scope.make()
          yield* Effect.addFinalizer(() => Scope.close(pause, Exit.void))
          const at = { interrupted: 0 }
          const fiber = yield* Effect.forkChild(
            holder.run(
              Effect.scoped(
                Effect.andThen(
                  Lease.hold(freshKey("hold-paused"), TTL),
                  workThatCutsOff(Scope.provide(redis.pause, pause), at)
                )
              )
            )
          )
          const exit = yield* Fiber.await(fiber)
          const closedAt = yield* nowMillis
          assert.isTrue(Exit.hasInterrupts(exit), "a lost hold interrupts the fiber that acquired it")
          const lost = yield* holder.recorder.waitFor((event) => event._tag === "lost")
          assert.strictEqual(lost._tag === "lost" && lost.because, "store-unavailable")
          const closing = closedAt - at.interrupted
          assert.isBelow(closing, PROMPT, `the hold's scope closed ${closing} ms after the interrupt`)
          const closeTook = yield* holder.closeLayer
          assert.isBelow(closeTook, COMMAND_TIMEOUT + PROMPT, `the layer closed in ${closeTook} ms`)
        })
      )
    )
  })
})
