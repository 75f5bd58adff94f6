/**
 * A recording `LeaseObserver` for tests: every event, in order, and a way to wait for one without sleeping.
 *
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Lease, LeaseStore } from "leasehold"
 * import { RecordingObserver } from "@leasehold/testing"
 *
 * const TestLease = Lease.layer.pipe(Layer.provide(LeaseStore.layerMemory), Layer.provideMerge(RecordingObserver.layer))
 * const program = Effect.gen(function* () {
 *   const recorder = yield* RecordingObserver.Recorder
 *   const lost = yield* recorder.waitFor((event) => event._tag === "lost")
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Context, Deferred, Effect, Layer } from "effect"
import { type LeaseError, LeaseObserver } from "leasehold"

/**
 * One observed event, tagged with the observer callback that saw it.
 *
 * @category models
 * @since 0.1.0
 */
export type ObservedEvent =
  | { readonly _tag: "acquired"; readonly lease: LeaseObserver.LeaseInfo }
  | { readonly _tag: "contended"; readonly contention: LeaseObserver.Contention }
  | { readonly _tag: "heldWithoutExpiry"; readonly contention: LeaseObserver.Contention }
  | { readonly _tag: "tryFailed"; readonly key: string; readonly error: LeaseError.LeaseError }
  | { readonly _tag: "renewed"; readonly lease: LeaseObserver.LeaseInfo }
  | { readonly _tag: "renewFailed"; readonly lease: LeaseObserver.LeaseInfo; readonly error: LeaseError.LeaseError }
  | { readonly _tag: "lost"; readonly lease: LeaseObserver.LeaseInfo; readonly because: LeaseError.LostBecause }
  | { readonly _tag: "released"; readonly lease: LeaseObserver.LeaseInfo; readonly wasHeld: boolean }
  | { readonly _tag: "releaseFailed"; readonly lease: LeaseObserver.LeaseInfo; readonly error: LeaseError.LeaseError }

/**
 * What a test reads from the recording observer.
 * - `events`: everything seen so far, in order;
 * - `waitFor(predicate)`: the first event (already seen or still to come) that matches.
 *
 * @category services
 * @since 0.1.0
 */
export class Recorder extends Context.Service<
  Recorder,
  {
    readonly observer: LeaseObserver.LeaseObserver
    readonly events: Effect.Effect<ReadonlyArray<ObservedEvent>>
    readonly waitFor: (predicate: (event: ObservedEvent) => boolean) => Effect.Effect<ObservedEvent>
  }
>()("@leasehold/testing/Recorder") {}

/**
 * Makes a recorder and the observer that feeds it.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: Effect.Effect<Recorder["Service"]> = Effect.sync(() => {
  const seen: Array<ObservedEvent> = []
  const waiters = new Set<{
    readonly predicate: (event: ObservedEvent) => boolean
    readonly deferred: Deferred.Deferred<ObservedEvent>
  }>()
  const record = (event: ObservedEvent) =>
    Effect.sync(() => {
      seen.push(event)
      for (const waiter of waiters) {
        if (waiter.predicate(event)) {
          waiters.delete(waiter)
          Deferred.doneUnsafe(waiter.deferred, Effect.succeed(event))
        }
      }
    })
  const observer: LeaseObserver.LeaseObserver = {
    acquired: (lease) => record({ _tag: "acquired", lease }),
    contended: (contention) => record({ _tag: "contended", contention }),
    heldWithoutExpiry: (contention) => record({ _tag: "heldWithoutExpiry", contention }),
    tryFailed: (key, error) => record({ _tag: "tryFailed", key, error }),
    renewed: (lease) => record({ _tag: "renewed", lease }),
    renewFailed: (lease, error) => record({ _tag: "renewFailed", lease, error }),
    lost: (lease, because) => record({ _tag: "lost", lease, because }),
    released: (lease, wasHeld) => record({ _tag: "released", lease, wasHeld }),
    releaseFailed: (lease, error) => record({ _tag: "releaseFailed", lease, error })
  }
  const waitFor = (predicate: (event: ObservedEvent) => boolean) =>
    Effect.suspend(() => {
      const found = seen.find(predicate)
      if (found !== undefined) return Effect.succeed(found)
      const deferred = Deferred.makeUnsafe<ObservedEvent>()
      const waiter = { predicate, deferred }
      waiters.add(waiter)
      return Deferred.await(deferred).pipe(Effect.ensuring(Effect.sync(() => waiters.delete(waiter))))
    })
  return { observer, events: Effect.sync(() => [...seen]), waitFor }
})

/**
 * Provides a `Recorder` and installs its observer as the `LeaseObserver` (provide it to `Lease.layer`, and merge it
 * into the test's context to read the events).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<Recorder> = Layer.effectContext(
  Effect.map(make, (recorder) =>
    Context.make(Recorder, recorder).pipe(Context.add(LeaseObserver.LeaseObserver, recorder.observer))
  )
)
