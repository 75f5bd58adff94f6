/**
 * Fencing in practice: a guard in front of a protected resource that accepts a write only if the writer's fence is
 * the highest it has seen. A holder that lost its lease without knowing it (a long pause, a partition, a Redis
 * failover) still carries its old fence, and every holder after it carries a higher one, so its late write is
 * refused instead of overwriting newer data.
 *
 * The guarded value lives in Redis as a hash with two fields, `fence` (the highest fence accepted) and `value`, and
 * `guardedSet` checks and writes it in one Lua script:
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Fence, Lease } from "leasehold"
 *
 * const publish = Lease.withLease("reports:daily", "30 seconds", (lease) =>
 *   Effect.gen(function* () {
 *     const report = yield* buildReport
 *     const applied = yield* Fence.guardedSet("reports:daily:latest", lease.fence, report)
 *     if (!applied) yield* Effect.logWarning("a newer holder wrote the report; ours was dropped")
 *   })
 * )
 * ```
 *
 * Fences are only as durable as the Redis counter behind them: read docs/fencing.md before relying on them across a
 * Redis restart or failover.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option } from "effect"
import * as Redis from "effect/persistence/Redis"
import { boundedCommand } from "./internal/redis/boundedCommand.ts"
import * as LeaseError from "./LeaseError.ts"

/**
 * What a guard holds for a resource: the highest fence it accepted and the value written with it.
 *
 * @category models
 * @since 0.1.0
 */
export interface Guarded {
  readonly fence: bigint
  readonly value: string
}

/**
 * A fencing guard: the same contract over Redis (`makeRedisGuard`) and over memory (`makeMemoryGuard`), so code
 * written against it runs on either.
 * - `guardedSet(resource, fence, value)`: writes `value` if `fence` is at least the highest fence accepted for
 *   `resource` (equal: the same holder writing again), and remembers `fence`; `true` when the write was applied,
 *   `false` when a higher fence had already been accepted (the writer is stale; nothing changed).
 * - `get(resource)`: the highest fence accepted and its value, or `None` when nothing was written.
 *
 * @category models
 * @since 0.1.0
 */
export interface Guard {
  readonly guardedSet: (resource: string, fence: bigint, value: string) => Effect.Effect<boolean, LeaseError.LeaseError>
  readonly get: (resource: string) => Effect.Effect<Option.Option<Guarded>, LeaseError.LeaseError>
}

/**
 * Options of the Redis guard.
 * - `commandTimeout` (default 2 seconds): the bound on each command; a Redis that is down, paused or partitioned
 *   yields `StoreUnavailable` after this long instead of a hang.
 *
 * @category models
 * @since 0.1.0
 */
export interface RedisOptions {
  readonly commandTimeout?: Duration.Input | undefined
}

const invalidFence = (fence: unknown): LeaseError.LeaseError | undefined => {
  if (typeof fence !== "bigint") {
    return LeaseError.make(
      new LeaseError.InvalidOption({ option: "fence", problem: `it is a ${typeof fence}, not a bigint` })
    )
  }
  return fence < 1n
    ? LeaseError.make(
        new LeaseError.InvalidOption({
          option: "fence",
          problem: `it is ${fence}; fences start at 1 (use lease.fence)`
        })
      )
    : undefined
}

/** Bounds one Redis command by the timeout and maps its failures and unexpected replies to `StoreUnavailable`. */
const bounded = <A>(
  operation: string,
  resource: string,
  options: RedisOptions | undefined,
  command: Effect.Effect<unknown, Redis.RedisError>,
  parse: (reply: unknown) => A | undefined
): Effect.Effect<A, LeaseError.LeaseError> =>
  boundedCommand(
    Duration.fromInputUnsafe(options?.commandTimeout ?? Duration.seconds(2)),
    operation,
    resource
  )(command, parse)

/**
 * Writes `value` to the Redis hash `resource` if `fence` is at least the highest fence accepted there, in one
 * atomic script; `true` when applied, `false` when the writer is stale (a higher fence was accepted; nothing
 * changed). `resource` is the Redis key of the protected value, named by you (it is not prefixed); give it a hash tag
 * if it must share a Cluster slot with other keys (`LeaseStore.hashTag(key)` is the tag of a lease's keys). A fence below 1 fails with `InvalidOption`; Redis failures,
 * timeouts and a `resource` that is not such a hash fail with `StoreUnavailable`.
 *
 * ```ts
 * const applied = yield* Fence.guardedSet("reports:daily:latest", lease.fence, JSON.stringify(report))
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const guardedSet = Effect.fn("Fence.guardedSet")(function* (
  resource: string,
  fence: bigint,
  value: string,
  options?: RedisOptions
): Effect.fn.Return<boolean, LeaseError.LeaseError, Redis.Redis> {
  const invalid = invalidFence(fence)
  if (invalid !== undefined) return yield* Effect.fail(invalid)
  const redis = yield* Redis.Redis
  return yield* bounded(
    "guardedSet",
    resource,
    options,
    redis.eval(guardedSetScript)(resource, fence.toString(), value),
    (reply) => (reply === 1 ? true : reply === 0 ? false : undefined)
  )
})

/**
 * Reads the guarded value of the Redis hash `resource`: the highest fence accepted and its value, or `None`.
 *
 * @category operations
 * @since 0.1.0
 */
export const get = Effect.fn("Fence.get")(function* (
  resource: string,
  options?: RedisOptions
): Effect.fn.Return<Option.Option<Guarded>, LeaseError.LeaseError, Redis.Redis> {
  const redis = yield* Redis.Redis
  return yield* bounded(
    "get",
    resource,
    options,
    redis.send("HMGET", resource, "fence", "value"),
    (reply): Option.Option<Guarded> | undefined => {
      if (!Array.isArray(reply)) return undefined
      const [fence, value] = reply as ReadonlyArray<unknown>
      if (fence === null && value === null) return Option.none()
      return typeof fence === "string" && /^[1-9]\d*$/.test(fence) && typeof value === "string"
        ? Option.some({ fence: BigInt(fence), value })
        : undefined
    }
  )
})

/**
 * A guard over the `Redis.Redis` in context (see `guardedSet` and `get`), for code written against `Guard`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeRedisGuard = (options?: RedisOptions): Effect.Effect<Guard, never, Redis.Redis> =>
  Effect.map(Effect.context<Redis.Redis>(), (context) => ({
    guardedSet: (resource, fence, value) => Effect.provideContext(guardedSet(resource, fence, value, options), context),
    get: (resource) => Effect.provideContext(get(resource, options), context)
  }))

/**
 * A guard in memory, with the same rules as the Redis one: for a resource that lives in this process, and for tests.
 *
 * ```ts
 * const guard = yield* Fence.makeMemoryGuard
 * yield* guard.guardedSet("config", 2n, "v2")   // true
 * yield* guard.guardedSet("config", 1n, "v1")   // false: fence 2 was already accepted
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeMemoryGuard: Effect.Effect<Guard> = Effect.sync(() => {
  const guarded = new Map<string, Guarded>()
  return {
    guardedSet: (resource, fence, value) =>
      Effect.suspend(() => {
        const invalid = invalidFence(fence)
        if (invalid !== undefined) return Effect.fail(invalid)
        const highest = guarded.get(resource)?.fence
        if (highest !== undefined && highest > fence) return Effect.succeed(false)
        guarded.set(resource, { fence, value })
        return Effect.succeed(true)
      }),
    get: (resource) => Effect.sync(() => Option.fromUndefinedOr(guarded.get(resource)))
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Lua: user data reaches the script only through KEYS and ARGV. Fences are compared as decimal strings (length
// first), exactly and at any size: Lua numbers are doubles, and a fence may exceed 2^53 (an epoch in its high bits).
// ---------------------------------------------------------------------------------------------------------------

const guardedSetScript = Redis.script((resource: string, fence: string, value: string) => [resource, fence, value], {
  numberOfKeys: 1,
  lua: `
local highest = redis.call("HGET", KEYS[1], "fence")
if highest then
  if not string.match(highest, "^[1-9]%d*$") then
    return redis.error_reply("ERR the fence field of the guarded hash is not a positive integer")
  end
  if #highest > #ARGV[1] or (#highest == #ARGV[1] and highest > ARGV[1]) then
    return 0
  end
end
redis.call("HSET", KEYS[1], "fence", ARGV[1], "value", ARGV[2])
return 1
`
}).withReturnType<unknown>()
