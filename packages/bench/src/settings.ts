/**
 * The two modes of the bench: `quick` (the default, under two minutes on a 2-core machine) and `full` (the sizes of
 * the issue; writes docs/benchmarks.md).
 *
 * @since 0.1.0
 */
import type { ContendSettings } from "./scenarios/contend.ts"
import type { ContendProcsSettings } from "./scenarios/contendProcs.ts"
import type { HoldManySettings } from "./scenarios/holdMany.ts"
import type { MemSettings } from "./scenarios/mem.ts"
import type { RenewSettings } from "./scenarios/renew.ts"
import type { ThroughputSettings } from "./scenarios/throughput.ts"

/**
 * Every size, duration and round count of a run.
 *
 * @category models
 * @since 0.1.0
 */
export interface Settings {
  readonly mode: "quick" | "full"
  /** The TTL of the leases of `seq`, `par64` and the contention scenarios. */
  readonly ttlMillis: number
  readonly seq: ThroughputSettings
  readonly par64: ThroughputSettings
  readonly contend: ContendSettings
  readonly contendProcs: ContendProcsSettings
  readonly renew: RenewSettings
  readonly holdMany: HoldManySettings
  readonly mem: MemSettings
  /** The whole run is killed after this long. */
  readonly watchdogMs: number
}

const allHolders = [
  "leasehold",
  "timer-per-lock",
  "redis-semaphore",
  "redlock-using",
  "sesamecare",
  "effect-distributed-lock"
]
const allCyclers = [
  "leasehold",
  "redlock",
  "redlock-using",
  "sesamecare",
  "redis-semaphore",
  "effect-distributed-lock",
  "raw-node-redis",
  "raw-ioredis"
]

/**
 * Quick mode: fewer rounds, shorter runs, 2,000 held leases for 5 s, 40,000 `mem` cycles, and only leasehold and its
 * baselines in `hold-many` and `mem`.
 *
 * @category settings
 * @since 0.1.0
 */
export const quick: Settings = {
  mode: "quick",
  ttlMillis: 10_000,
  seq: { rounds: 3, durationMs: 400, warmupMs: 150, concurrency: 1, maxCycles: 200_000 },
  par64: { rounds: 3, durationMs: 400, warmupMs: 150, concurrency: 64, maxCycles: 500_000 },
  contend: { rounds: 2, durationMs: 800, warmupMs: 150, workers: 8, holdMs: 1, graceMs: 5_000 },
  contendProcs: {
    rounds: 1,
    durationMs: 1_000,
    warmupMs: 200,
    processes: 4,
    workersPerProcess: 2,
    holdMs: 1,
    graceMs: 5_000
  },
  renew: { rounds: 1, ttlMillis: 300, holdMs: 1_500 },
  holdMany: {
    subjects: ["timer-per-lock"],
    rounds: 1,
    leases: 2_000,
    ttlMillis: 3_000,
    holdMs: 5_000,
    concurrency: 100
  },
  mem: { subjects: ["raw-node-redis"], cycles: 40_000, concurrency: 16, ttlMillis: 10_000 },
  watchdogMs: 6 * 60_000
}

/**
 * Full mode: the sizes of the issue (10,000 leases held for 10 s, 100,000 `mem` cycles), more and longer rounds,
 * every library that can run each scenario.
 *
 * @category settings
 * @since 0.1.0
 */
export const full: Settings = {
  mode: "full",
  ttlMillis: 10_000,
  seq: { rounds: 5, durationMs: 2_000, warmupMs: 500, concurrency: 1, maxCycles: 2_000_000 },
  par64: { rounds: 5, durationMs: 2_000, warmupMs: 500, concurrency: 64, maxCycles: 5_000_000 },
  contend: { rounds: 5, durationMs: 3_000, warmupMs: 300, workers: 8, holdMs: 1, graceMs: 10_000 },
  contendProcs: {
    rounds: 3,
    durationMs: 3_000,
    warmupMs: 300,
    processes: 4,
    workersPerProcess: 2,
    holdMs: 1,
    graceMs: 10_000
  },
  renew: { rounds: 3, ttlMillis: 300, holdMs: 3_000 },
  holdMany: { subjects: allHolders, rounds: 1, leases: 10_000, ttlMillis: 3_000, holdMs: 10_000, concurrency: 200 },
  mem: { subjects: allCyclers, cycles: 100_000, concurrency: 16, ttlMillis: 10_000 },
  watchdogMs: 45 * 60_000
}
