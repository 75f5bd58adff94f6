/**
 * leasehold through its public API: `Lease.acquire`/`Lease.release`, `Lease.withLease`, and `Lease.hold` for
 * held leases, over `LeaseStore.layerRedis()` and `NodeRedis.layer({ url, disableOfflineQueue: true })`. Each call
 * runs on one `ManagedRuntime`, as a Promise-based application would call it.
 *
 * @since 0.1.0
 */
import { NodeRedis } from "@effect/platform-node"
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { Lease, LeaseStore } from "leasehold"
import { NotAcquired, type Subject, type SubjectOptions } from "./Subject.ts"

/**
 * Connects leasehold (the layers are built eagerly, so the connection is open when this resolves).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = async ({ url, ttlMillis }: SubjectOptions): Promise<Subject> => {
  const runtime = ManagedRuntime.make(
    Lease.layer.pipe(
      Layer.provide(LeaseStore.layerRedis({ prefix: "bench-leasehold:" })),
      Layer.provide(NodeRedis.layer({ url, disableOfflineQueue: true }))
    )
  )
  await runtime.context()

  const acquireRelease = Effect.fnUntraced(function* (key: string) {
    const attempt = yield* Lease.acquire(key, ttlMillis)
    if (attempt._tag !== "Acquired") return yield* Effect.die(new NotAcquired(`${key} is held`))
    yield* Lease.release(attempt.lease)
  })

  const hold = Effect.fnUntraced(function* (key: string, holdTtlMillis: number) {
    const scope = yield* Scope.make()
    const active = yield* Lease.hold(key, holdTtlMillis).pipe(
      Scope.provide(scope),
      Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
    )
    return {
      owned: () => runtime.runPromise(Effect.flatMap(active.current, Lease.checkOwnership)),
      release: () => runtime.runPromise(Scope.close(scope, Exit.void))
    }
  })

  return {
    acquireRelease: (key) => runtime.runPromise(acquireRelease(key)),
    withLock: (key, work) => runtime.runPromise(Lease.withLease(key, ttlMillis, Effect.promise(work))),
    hold: (key, holdTtlMillis) => runtime.runPromise(hold(key, holdTtlMillis)),
    close: () => runtime.dispose()
  }
}
