/**
 * Model-based test of the memory store: random sequences of acquire / renew / release / checkOwnership / inspect
 * from three clients, with time jumps on the TestClock, must agree with the reference model on every answer, exactly
 * (the TestClock does not move during an operation, so no answer is ambiguous). Replay: see ops.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { SequenceTokens } from "@leasehold/testing"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { Lease, LeaseStore, TokenSource } from "leasehold"
import { clientCount, makeStats, ops, parameters, replaying, run, type Stats } from "./ops.ts"

/** One sequence against a fresh memory store and one Lease service per client, on a fresh TestClock. */
const runOnMemory = (sequence: ReadonlyArray<import("./ops.ts").Op>, stats: Stats) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* LeaseStore.makeMemory
      const clients = yield* Effect.forEach(
        Array.from({ length: clientCount }, (_, i) => i),
        (i) =>
          Lease.make.pipe(
            Effect.provideService(LeaseStore.LeaseStore, store),
            Effect.provideService(TokenSource.TokenSource, SequenceTokens.make(`client${i}-token-`))
          )
      )
      yield* run(
        {
          clients,
          keyName: (key) => `key-${key}`,
          now: Clock.currentTimeMillis,
          advance: TestClock.adjust,
          margin: 0,
          tolerance: 0
        },
        sequence,
        stats
      )
    })
  ).pipe(Effect.provide(TestClock.layer()))

describe("model-based: memory store (TestClock)", () => {
  it("agrees with the reference model on every answer, exactly", { timeout: 30_000 }, async () => {
    const stats = makeStats()
    await fc.assert(
      fc.asyncProperty(ops(40), (sequence) => Effect.runPromise(runOnMemory(sequence, stats))),
      parameters(500)
    )
    assert.strictEqual(stats.ambiguous, 0, "on the TestClock every answer is exact")
    if (replaying) return
    // The runs reached every kind of answer, hand-overs after an expiry included.
    for (const outcome of [
      "acquire:Acquired",
      "acquire:Held",
      "acquire:after-expiry",
      "renew:true",
      "renew:false",
      "release:true",
      "release:false",
      "checkOwnership:true",
      "checkOwnership:false",
      "inspect:some",
      "inspect:none"
    ]) {
      assert.isTrue((stats.outcomes[outcome] ?? 0) >= 20, `${outcome}: ${stats.outcomes[outcome] ?? 0} times`)
    }
  })
})
