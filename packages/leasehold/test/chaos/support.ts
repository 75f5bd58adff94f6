import { RecordingObserver, RedisTestServer } from "@leasehold/testing"
import { Context, Effect, Exit, Layer, Option, References } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Lease, LeaseError, LeaseStore } from "leasehold"

/** One process's view of leasehold: its own client, Redis store, `Lease` service and recording observer. */
export interface LeaseClient {
  readonly lease: Lease.Lease["Service"]
  readonly recorder: RecordingObserver.Recorder["Service"]
  readonly redis: Redis.Redis["Service"]
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, Exclude<R, Lease.Lease>>
}

/**
 * A `LeaseClient` over an open client (`client`: node-redis and its `Redis` service, or a `Redis` service alone), its
 * layers built in the current scope.
 */
export const leaseClientOn = <R extends Redis.Redis>(client: Context.Context<R>, options?: LeaseStore.RedisOptions) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      Layer.fresh(Lease.layer).pipe(
        Layer.provideMerge(Layer.fresh(RecordingObserver.layer)),
        Layer.provide(LeaseStore.layerRedis(options)),
        Layer.provide(Layer.succeedContext(client))
      )
    ).pipe(Effect.provideService(References.MinimumLogLevel, "Error"))
    const lease = Context.get(context, Lease.Lease)
    return {
      lease,
      recorder: Context.get(context, RecordingObserver.Recorder),
      redis: Context.get(client as Context.Context<Redis.Redis>, Redis.Redis),
      run: (effect) => Effect.provideService(effect, Lease.Lease, lease)
    } satisfies LeaseClient
  })

/** A `LeaseClient` over `url` (the server, or a proxy in front of it), for the life of the scope. */
export const leaseClient = (url: string, options?: LeaseStore.RedisOptions) =>
  Effect.flatMap(RedisTestServer.connectDisposable(url), (client) => leaseClientOn(client, options))

/** Effect's monotonic clock in milliseconds: the clock of `Lease.Handle.validUntil`. */
export const nowMillis = Effect.clockWith((clock) => Effect.sync(() => Number(clock.currentTimeNanosUnsafe()) / 1e6))

let counter = 0
/** A key of its own for each test. */
export const freshKey = (label: string) => `chaos:${label}:${process.pid}:${++counter}`

/** The `LeaseError` reason of a failed exit. */
export const reasonOf = (exit: Exit.Exit<unknown, unknown>): LeaseError.LeaseErrorReason => {
  const error = Exit.findErrorOption(exit)
  if (Option.isNone(error) || !LeaseError.isLeaseError(error.value))
    throw new Error(`expected a LeaseError, got ${Exit.isSuccess(exit) ? "a success" : String(exit.cause)}`)
  return error.value.reason
}

/** The Redis key of a lease under the default prefix. */
export const leaseRedisKey = (key: string) => LeaseStore.redisKeys("lease:", key).lease
