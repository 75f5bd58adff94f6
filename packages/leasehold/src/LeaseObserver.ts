/**
 * Hooks that see every lease event (the seed's `observability.LeaseObserver` / `WithObserver`): for metrics, logs
 * and tests. Observers cannot fail an operation: whatever an observer does, the lease keeps its own result.
 *
 * ```ts
 * import { Layer } from "effect"
 * import { Lease, LeaseObserver } from "leasehold"
 *
 * const logged = Lease.layer.pipe(Layer.provide(LeaseObserver.layerLog))
 * ```
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Option } from "effect"
import type * as LeaseError from "./LeaseError.ts"
import type { LeaseOwner } from "./LeaseOwner.ts"

/**
 * What an observer learns about a lease: never its token.
 *
 * @category models
 * @since 0.1.0
 */
export interface LeaseInfo {
  readonly key: string
  readonly fence: bigint
  readonly ttl: Duration.Duration
  readonly owner: Option.Option<LeaseOwner>
}

/**
 * Another holder had the key when an acquire was tried.
 *
 * @category models
 * @since 0.1.0
 */
export interface Contention {
  readonly key: string
  readonly remaining: Duration.Duration
  readonly holder: Option.Option<LeaseOwner>
}

/**
 * The observer interface: one callback per event.
 * - `heldWithoutExpiry`: a blocking acquire found the key held with no expiry in the store (written by something
 *   other than leasehold, or by hand): it cannot free by itself, so the waiter will only get it if someone deletes
 *   it. Told once per blocking acquire;
 * - `tryFailed`: a try of a blocking acquire failed (the store did not answer); the waiter keeps waiting, with
 *   backoff, and gets the error only if its budget ends with the store still failing.
 *
 * @category models
 * @since 0.1.0
 */
export interface LeaseObserver {
  readonly acquired: (lease: LeaseInfo) => Effect.Effect<void>
  readonly contended: (contention: Contention) => Effect.Effect<void>
  readonly heldWithoutExpiry: (contention: Contention) => Effect.Effect<void>
  readonly tryFailed: (key: string, error: LeaseError.LeaseError) => Effect.Effect<void>
  readonly renewed: (lease: LeaseInfo) => Effect.Effect<void>
  readonly renewFailed: (lease: LeaseInfo, error: LeaseError.LeaseError) => Effect.Effect<void>
  readonly lost: (lease: LeaseInfo, reason: LeaseError.LostBecause) => Effect.Effect<void>
  readonly released: (lease: LeaseInfo, wasHeld: boolean) => Effect.Effect<void>
  readonly releaseFailed: (lease: LeaseInfo, error: LeaseError.LeaseError) => Effect.Effect<void>
}

/**
 * An observer that ignores every event: the default.
 *
 * @category constructors
 * @since 0.1.0
 */
export const noop: LeaseObserver = {
  acquired: () => Effect.void,
  contended: () => Effect.void,
  heldWithoutExpiry: () => Effect.void,
  tryFailed: () => Effect.void,
  renewed: () => Effect.void,
  renewFailed: () => Effect.void,
  lost: () => Effect.void,
  released: () => Effect.void,
  releaseFailed: () => Effect.void
}

/**
 * The observer in use; `noop` unless a layer provides another.
 *
 * @category services
 * @since 0.1.0
 */
export const LeaseObserver = Context.Reference<LeaseObserver>("leasehold/LeaseObserver", {
  defaultValue: () => noop
})

/**
 * Provides an observer to `Lease.layer`.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (observer: LeaseObserver) => Layer.succeed(LeaseObserver, observer)

const annotate =
  (lease: { readonly key: string; readonly fence?: bigint }) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.annotateLogs(
      effect,
      lease.fence === undefined ? { leaseKey: lease.key } : { leaseKey: lease.key, fence: String(lease.fence) }
    )

/**
 * An observer that writes every event to Effect's logger: routine events at debug level, contention and failed
 * tries of a waiter at debug, failures, losses and keys without expiry at warning level. Tokens are never logged.
 *
 * @category constructors
 * @since 0.1.0
 */
export const log: LeaseObserver = {
  acquired: (lease) => Effect.logDebug(`lease acquired (ttl ${Duration.format(lease.ttl)})`).pipe(annotate(lease)),
  contended: (c) =>
    Effect.logDebug(
      `lease held by ${Option.match(c.holder, { onNone: () => "another holder", onSome: (owner) => owner.id })}, ${Duration.format(c.remaining)} left`
    ).pipe(annotate(c)),
  heldWithoutExpiry: (c) =>
    Effect.logWarning(
      "lease key held with no expiry in the store (written by something else?): waiters cannot get it until it is deleted"
    ).pipe(annotate(c)),
  tryFailed: (key, error) =>
    Effect.logDebug(`acquire try failed, still waiting: ${error.message}`).pipe(annotate({ key })),
  renewed: (lease) => Effect.logDebug("lease renewed").pipe(annotate(lease)),
  renewFailed: (lease, error) => Effect.logWarning(`lease renew failed: ${error.message}`).pipe(annotate(lease)),
  lost: (lease, reason) => Effect.logWarning(`lease lost (${reason})`).pipe(annotate(lease)),
  released: (lease, wasHeld) =>
    Effect.logDebug(wasHeld ? "lease released" : "lease was no longer held at release").pipe(annotate(lease)),
  releaseFailed: (lease, error) => Effect.logWarning(`lease release failed: ${error.message}`).pipe(annotate(lease))
}

/**
 * Logs every lease event through Effect's logger (see `log`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerLog = layer(log)
