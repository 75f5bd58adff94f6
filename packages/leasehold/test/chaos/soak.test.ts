import { assert, describe, it } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Effect } from "effect"
import * as Soak from "../../soak/Soak.ts"

describe.skipIf(!RedisTestServer.hasServerBinary())(
  "chaos: a short soak (2 processes x 3 workers, 10 s, seed 3934)",
  () => {
    it.live(
      "no overlap except by holders paused beyond their TTL, and each of those was told LeaseLost",
      () =>
        Effect.gen(function* () {
          const report = yield* Effect.scoped(
            Soak.run({
              durationMillis: 10_000,
              seed: 3934,
              processes: 2,
              workersPerProcess: 3,
              keys: 2,
              ttlMillis: 1_000
            })
          )
          const summary = Soak.summary(report)
          console.log(summary)
          // Seed 3934 draws every kind of fault within 10 s, a process paused beyond its TTL first.
          assert.includeMembers(
            report.faults.map((fault) => fault.kind),
            ["process-pause-beyond-ttl", "partition", "redis-pause", "latency", "cut", "drop-replies", "process-pause"],
            summary
          )
          assert.isAbove(report.leases.length, 10, summary)
          assert.isAbove(report.steps, 100, summary)
          assert.deepStrictEqual(report.stuck, [], summary)
          assert.deepStrictEqual(
            report.overlaps.filter((overlap) => !overlap.explained),
            [],
            summary
          )
          assert.deepStrictEqual(report.pausedWithoutLoss, [], summary)
          assert.isTrue(report.ok, summary)
        }),
      60_000
    )
  }
)
