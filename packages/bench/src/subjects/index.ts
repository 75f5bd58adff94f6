/**
 * The subjects of the bench, in table order: leasehold, the peer libraries, and the raw baselines. Each library is
 * imported only when its subject is made, so a worker process loads just the one it runs.
 *
 * @since 0.1.0
 */
import type { Spec } from "./Subject.ts"

const usingNeedsLongTtl =
  "`using()` refuses a TTL under 600 ms with its default `automaticExtensionThreshold` (500 ms + 100 ms)"
const noRenew = (what: string) => `${what} has no automatic renewal`

/**
 * Every subject. `raw node-redis` is the baseline of every ratio, except in `hold-many`, where it is
 * `timer-per-lock`.
 *
 * @category subjects
 * @since 0.1.0
 */
export const specs: ReadonlyArray<Spec> = [
  {
    id: "leasehold",
    name: "leasehold",
    role: "leasehold",
    unsupported: {},
    make: async (options) => (await import("./leasehold.ts")).make(options)
  },
  {
    id: "redlock",
    name: "redlock acquire/release",
    role: "peer",
    unsupported: {
      renew: noRenew("`acquire`/`release`"),
      "hold-many": noRenew("`acquire`/`release`")
    },
    make: async (options) => (await import("./redlock.ts")).makeAcquireRelease(options)
  },
  {
    id: "redlock-using",
    name: "redlock using()",
    role: "peer",
    unsupported: { renew: usingNeedsLongTtl },
    make: async (options) => (await import("./redlock.ts")).makeUsing(options)
  },
  {
    id: "sesamecare",
    name: "@sesamecare-oss/redlock",
    role: "peer",
    unsupported: { renew: usingNeedsLongTtl },
    make: async (options) => (await import("./sesamecare.ts")).make(options)
  },
  {
    id: "redis-semaphore",
    name: "redis-semaphore Mutex",
    role: "peer",
    unsupported: {},
    make: async (options) => (await import("./redisSemaphore.ts")).make(options)
  },
  {
    id: "effect-distributed-lock",
    name: "effect-distributed-lock",
    role: "peer",
    unsupported: {},
    make: async (options) => (await import("./effectDistributedLock.ts")).make(options)
  },
  {
    id: "raw-node-redis",
    name: "raw node-redis",
    role: "baseline",
    unsupported: {
      renew: noRenew("the raw baseline (its auto-renewing form is `timer-per-lock`)"),
      "hold-many": noRenew("the raw baseline (its auto-renewing form is `timer-per-lock`)")
    },
    make: async (options) => (await import("./rawNodeRedis.ts")).make(options)
  },
  {
    id: "raw-node-redis-scripts",
    name: "raw node-redis, leasehold's scripts",
    role: "baseline",
    unsupported: {
      contend: "acquire/release only: it shows the Redis-side cost of leasehold's scripts",
      "contend-procs": "acquire/release only: it shows the Redis-side cost of leasehold's scripts",
      renew: "acquire/release only",
      "hold-many": "acquire/release only",
      mem: "acquire/release only"
    },
    make: async (options) => (await import("./rawNodeRedis.ts")).makeWithLeaseholdScripts(options)
  },
  {
    id: "raw-ioredis",
    name: "raw ioredis",
    role: "baseline",
    unsupported: { renew: noRenew("the raw baseline"), "hold-many": noRenew("the raw baseline") },
    make: async (options) => (await import("./rawIoredis.ts")).make(options)
  },
  {
    id: "timer-per-lock",
    name: "timer-per-lock (node-redis)",
    role: "baseline",
    unsupported: {
      seq: "holding only",
      par64: "holding only",
      contend: "holding only",
      "contend-procs": "holding only",
      mem: "holding only"
    },
    make: async (options) => (await import("./rawNodeRedis.ts")).makeTimerPerLock(options)
  }
]

/**
 * The id of the baseline of the ratios.
 *
 * @category subjects
 * @since 0.1.0
 */
export const baselineId = "raw-node-redis"

/**
 * The id of the baseline of `hold-many`: the one-timer-per-lock design.
 *
 * @category subjects
 * @since 0.1.0
 */
export const holdBaselineId = "timer-per-lock"

/**
 * The spec of a subject id; throws on an unknown id.
 *
 * @category subjects
 * @since 0.1.0
 */
export const specOf = (id: string): Spec => {
  const spec = specs.find((candidate) => candidate.id === id)
  if (spec === undefined) throw new Error(`unknown subject ${id}; known: ${specs.map((s) => s.id).join(", ")}`)
  return spec
}
