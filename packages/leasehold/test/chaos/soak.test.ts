import { assert, describe, it } from "@effect/vitest"
import { RedisTestServer } from "@leasehold/testing"
import { Effect } from "effect"
import * as Soak from "../../soak/Soak.ts"

describe.skipIf(!RedisTestServer.hasServerBinary())(
  "chaos: a short soak (2 processes x 3 workers, 14 s, seed 785)",
  () => {
    it.live(
      "every kind of fault, the subscriber cut too, restarts that keep leases and fences; no overlap except by holders paused beyond their TTL; only typed failures; every worker exits with its result",
      () =>
        Effect.gen(function* () {
          const report = yield* Effect.scoped(
            Soak.run({
              durationMillis: 14_000,
              seed: 785,
              processes: 2,
              workersPerProcess: 3,
              keys: 2,
              ttlMillis: 1_000
            })
          )
          const summary = Soak.summary(report)
          console.log(summary)
          // A run injects every kind once before it draws by weight; seed 785 draws them in about 10.5 s, a process
          // paused beyond its TTL first.
          assert.includeMembers(
            report.faults.map((fault) => fault.kind),
            [
              "latency",
              "late-replies",
              "partition",
              "drop-replies",
              "cut",
              "redis-pause",
              "redis-restart",
              "process-pause",
              "process-pause-beyond-ttl"
            ],
            summary
          )
          assert.isTrue(
            report.faults.some((fault) => fault.kind === "cut" && (fault.connections ?? 0) >= 2),
            `a cut closed the subscriber connection as well as the command connection\n${summary}`
          )
          assert.isAbove(
            report.restarts.reduce((sum, restart) => sum + restart.fences, 0),
            0,
            `a restart had fences to keep\n${summary}`
          )
          assert.isAbove(report.leases.length, 10, summary)
          assert.isAbove(report.steps, 100, summary)
          assert.deepStrictEqual(report.unfinished, [], summary)
          assert.deepStrictEqual(report.untyped, [], summary)
          assert.deepStrictEqual(
            report.restarts.flatMap((restart) => restart.problems),
            [],
            summary
          )
          assert.deepStrictEqual(
            report.overlaps.filter((overlap) => !overlap.explained),
            [],
            summary
          )
          assert.deepStrictEqual(report.pausedWithoutLoss, [], summary)
          assert.isTrue(report.ok, summary)
        }),
      90_000
    )
  }
)
