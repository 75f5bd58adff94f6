/**
 * A Promise API over `effect-distributed-lock` 0.0.11, which is built on Effect 3. The Effect 4 bench imports only
 * this module, so no Effect 3 type or runtime crosses into the Effect 4 workspace.
 *
 * The library runs with its defaults (TTL refreshed every TTL/3, waiters polling every 100 ms and, through the Redis
 * backing's push mode, woken by a pub/sub message on release); only the TTL is chosen by the caller.
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import { Duration, Effect, Exit, Fiber, ManagedRuntime, Option, Scope } from "effect"
import { DistributedSemaphore, RedisBacking } from "effect-distributed-lock"
import { Redis } from "ioredis"

/**
 * A lock held with automatic refresh until `release` is called.
 * - `owned`: whether the refresh fiber still runs and Redis still lists this holder.
 * - `release`: stops the refresh and releases the permit.
 *
 * @category models
 * @since 0.1.0
 */
export interface Hold {
  readonly owned: () => Promise<boolean>
  readonly release: () => Promise<void>
}

/**
 * The mutex operations the bench needs, over one ioredis connection.
 * - `acquireRelease`: tries once to take the mutex and releases it; `false` when it was held.
 * - `withLock`: waits for the mutex, runs `work` while it is held (refreshed), releases it.
 * - `hold`: takes the mutex (waiting if needed) and keeps it refreshed until released.
 * - `close`: disposes of the Effect 3 runtime and closes the connection.
 *
 * @category models
 * @since 0.1.0
 */
export interface Effect3Lock {
  readonly acquireRelease: (key: string, ttlMillis: number) => Promise<boolean>
  readonly withLock: <A>(key: string, ttlMillis: number, work: () => Promise<A>) => Promise<A>
  readonly hold: (key: string, ttlMillis: number) => Promise<Hold>
  readonly close: () => Promise<void>
}

/**
 * Options of `make`: the Redis URL and the key prefix of the Redis backing (default `"semaphore:"`).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly url: string
  readonly keyPrefix?: string | undefined
}

/**
 * Connects to Redis and returns the Promise API over `effect-distributed-lock` (a semaphore with limit 1, i.e. a
 * mutex, one permit per holder).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = async (options: Options): Promise<Effect3Lock> => {
  const keyPrefix = options.keyPrefix ?? "semaphore:"
  const redis = new Redis(options.url, { lazyConnect: true })
  // ioredis emits connection errors as events; without a listener they would be thrown.
  redis.on("error", () => {})
  await redis.connect()
  const runtime = ManagedRuntime.make(RedisBacking.layer(redis, { keyPrefix }))
  const mutex = (key: string, ttlMillis: number) =>
    DistributedSemaphore.make(key, { limit: 1, ttl: Duration.millis(ttlMillis) })

  const acquireRelease = (key: string, ttlMillis: number) =>
    runtime.runPromise(
      Effect.flatMap(mutex(key, ttlMillis), (semaphore) =>
        Effect.map(semaphore.withPermitsIfAvailable(1)(Effect.void), Option.isSome)
      )
    )

  const withLock = <A>(key: string, ttlMillis: number, work: () => Promise<A>) =>
    runtime.runPromise(
      Effect.flatMap(mutex(key, ttlMillis), (semaphore) => semaphore.withPermits(1)(Effect.promise(work)))
    )

  const hold = async (key: string, ttlMillis: number): Promise<Hold> => {
    const identifier = randomUUID()
    const scope = await runtime.runPromise(Scope.make())
    const refresher = await runtime
      .runPromise(
        Effect.flatMap(mutex(key, ttlMillis), (semaphore) => semaphore.take(1, { identifier })).pipe(
          Scope.extend(scope)
        )
      )
      .catch(async (error: unknown) => {
        await runtime.runPromise(Scope.close(scope, Exit.void))
        throw error
      })
    return {
      owned: async () => {
        if (Option.isSome(await runtime.runPromise(Fiber.poll(refresher)))) return false
        return (await redis.zscore(`${keyPrefix}${key}`, `${identifier}_0`)) !== null
      },
      release: () => runtime.runPromise(Scope.close(scope, Exit.void))
    }
  }

  const close = async () => {
    await runtime.dispose()
    await redis.quit().catch(() => redis.disconnect())
  }

  return { acquireRelease, withLock, hold, close }
}
