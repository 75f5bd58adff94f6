/**
 * The timing command in short (`npm run timing` runs 200 trials): with both cores busy, a lease whose holder is cut
 * off from Redis is interrupted before Redis expires it.
 */
import { assert, describe, it } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Effect, References } from "effect"
import * as Timing from "../../soak/Timing.ts"

describe.skipIf(!RedisTestServer.hasServerBinary())("chaos: timing (TTL 1 s, two CPU burners, seed 9)", () => {
  it.live(
    "every interrupt lands before the Redis-side expiry",
    () =>
      Effect.gen(function* () {
        const report = yield* Effect.scoped(
          Timing.run({
            trials: 6,
            concurrency: 2,
            ttlMillis: 1_000,
            burners: 2,
            seed: 9,
            margins: "measured",
            log: console.log
          })
        ).pipe(Effect.provideService(References.MinimumLogLevel, "Error"))
        const summary = Timing.summary(report)
        console.log(summary)
        assert.isAtLeast(report.trials.length, 4, summary)
        assert.strictEqual(report.notLost, 0, summary)
        assert.strictEqual(report.afterExpiry, 0, summary)
      }),
    60_000
  )
})
