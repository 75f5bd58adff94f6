/**
 * The event-loop delay margin (internal/loopDelay.ts): measured only under Effect's own clock, bounded by a quarter
 * of the TTL, and what makes the renewer give up earlier on a process whose timers run late.
 */
import { assert, describe, it } from "@effect/vitest"
import { Stall } from "@leasehold/testing"
import { Clock, Deferred, Effect, Fiber } from "effect"
import { Lease } from "leasehold"
import * as LoopDelay from "../src/internal/loopDelay.ts"
import { failureOf, makeTestLease, reasonOf } from "./support.ts"

const millisNow = Effect.map(Clock.currentTimeNanos, (nanos) => Number(nanos) / 1e6)

/** Waits (at most a second) until the margin reaches `atLeast`: the histogram records a stall when its timer next fires. */
const awaitMargin = (lateness: LoopDelay.Lateness, atLeast: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200 && lateness.millis() < atLeast; i++) yield* Effect.sleep(5)
    return lateness.millis()
  })

/** Let the histograms watch a whole window (1 s): the stall then lands in a fresh one, not in the first ticks. */
const firstWindow = Effect.sleep(1_050)

describe("LoopDelay", () => {
  it.live("a stalled event loop raises the margin to twice the lateness seen, at most a quarter of the TTL", () =>
    Effect.gen(function* () {
      const clock = yield* Clock.Clock
      const long = LoopDelay.watch(clock, 40_000)
      const short = LoopDelay.watch(clock, 200)
      yield* firstWindow
      const stalled = yield* Stall.stall(120)
      const margin = yield* awaitMargin(long, 2 * (stalled - 10))
      // The histogram's 10 ms timer fired at least `stalled - 10` ms late; counted twice.
      assert.isAtLeast(margin, 2 * (stalled - 10), `margin ${margin} ms after a ${stalled.toFixed(0)} ms stall`)
      assert.isBelow(margin, 10_000, "measured, no longer the bound")
      assert.strictEqual(short.millis(), 50, "a quarter of a 200 ms TTL")
      long.release()
      long.release()
      assert.strictEqual(long.millis(), 0, "a released watch adds nothing")
      assert.strictEqual(short.millis(), 50, "releasing one watch twice does not end another")
      short.release()
    })
  )

  it.effect("under a TestClock the margin is 0, whatever the real event loop does", () =>
    Effect.gen(function* () {
      const lateness = LoopDelay.watch(yield* Clock.Clock, 1_000)
      yield* Stall.stall(60)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 30)))
      assert.strictEqual(lateness.millis(), 0)
      lateness.release()
    })
  )

  it.live("a renew that never answers on a process that stalls: the renewer gives up earlier by the stall", () => {
    const { layer } = makeTestLease(() => ({ renew: () => Effect.never }))
    return Effect.gen(function* () {
      // Another watch, a window old: the histograms are past their first ticks when the stall comes.
      const earlier = LoopDelay.watch(yield* Clock.Clock, 1_000)
      yield* firstWindow
      const interrupted = yield* Deferred.make<{ readonly at: number; readonly validUntil: number }>()
      const fiber = yield* Effect.forkChild(
        Lease.withLease("stalls", 1_000, (active) =>
          Stall.stall(120).pipe(
            Effect.andThen(Effect.never),
            Effect.onInterrupt(() =>
              Effect.flatMap(Effect.all([millisNow, active.current]), ([at, lease]) =>
                Deferred.succeed(interrupted, { at, validUntil: lease.validUntil })
              )
            )
          )
        )
      )
      const reason = reasonOf(failureOf(yield* Fiber.await(fiber)))
      assert.strictEqual(reason._tag === "LeaseLost" && reason.because, "store-unavailable")
      const { at, validUntil } = yield* Deferred.await(interrupted)
      // Without the margin the renewer gives up 10 ms before validUntil; after a 120 ms stall it gives up at least
      // 2 x 110 ms earlier still (at most 250 ms, a quarter of the TTL).
      assert.isBelow(at, validUntil - 100, `interrupted ${(validUntil - at).toFixed(1)} ms before validUntil`)
      assert.isAtLeast(at, validUntil - 10 - 250 - 5, "never earlier than the bound")
      earlier.release()
    }).pipe(Effect.provide(layer))
  })
})
