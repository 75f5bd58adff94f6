/**
 * Leases: locks with a time to live, proven by a random token, held in a `LeaseStore` (Redis or memory).
 *
 * The shortest real program holds a lease around one effect. The lease is renewed every TTL/3 while the effect
 * runs, released when it ends, and if it is lost the effect is interrupted before the lease can expire in the store,
 * and fails with a `LeaseError` whose reason is `LeaseLost`:
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import { Lease, LeaseStore } from "leasehold"
 *
 * const job = Lease.withLease("jobs:nightly", "30 seconds", (lease) =>
 *   Effect.log(`running with fence ${lease.fence}`))
 *
 * const LeaseLive = Lease.layer.pipe(
 *   Layer.provide(LeaseStore.layerRedis({ prefix: "lease:" })),
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" })))
 *
 * Effect.runPromise(job.pipe(Effect.provide(LeaseLive)))
 * ```
 *
 * The seed's operations map one-to-one: `acquire` (never waits), `renew`, `release`, `checkOwnership`; plus
 * `inspect`, `hold` and `withLease`. A bare number TTL (or `wait`, `renewEvery`) is in milliseconds.
 *
 * @since 0.1.0
 */
import {
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Result,
  type Schedule,
  Scope
} from "effect"
import { millisOf, monotonicMillis } from "./internal/clock.ts"
import { driftMillis, type Handle, isGenuine, makeHandle } from "./internal/handle.ts"
import { Holding, make as holdsMake } from "./internal/holding.ts"
import * as renewer from "./internal/renewer.ts"
import * as validate from "./internal/validate.ts"
import { make as waitingMake } from "./internal/waiting.ts"
import * as LeaseError from "./LeaseError.ts"
import * as LeaseKey from "./LeaseKey.ts"
import * as LeaseObserver from "./LeaseObserver.ts"
import type { LeaseOwner } from "./LeaseOwner.ts"
import * as LeaseStore from "./LeaseStore.ts"
import * as LeaseToken from "./LeaseToken.ts"
import * as TokenSource from "./TokenSource.ts"

/**
 * The shortest TTL accepted for an auto-renewed lease (`hold`, `withLease`): below it, a renew every TTL/3 leaves
 * too little time for a round trip and the safety margin.
 *
 * @category constants
 * @since 0.1.0
 */
export const minimumAutoRenewTtl: Duration.Duration = Duration.millis(100)

export type { Handle, HandleFields } from "./internal/handle.ts"

/**
 * The outcome of one acquire attempt (the seed's `LeaseAttempt`): `Acquired` with the lease, or `Held` by another
 * token, with the time it has left and its owner metadata.
 *
 * @category models
 * @since 0.1.0
 */
export type LeaseAttempt = Data.TaggedEnum<{
  Acquired: { readonly lease: Handle }
  Held: {
    readonly key: LeaseKey.LeaseKey
    readonly remaining: Duration.Duration
    readonly owner: Option.Option<LeaseOwner>
  }
}>

/**
 * Constructors, guards (`$is`) and matching (`$match`) for `LeaseAttempt`.
 *
 * @category models
 * @since 0.1.0
 */
export const LeaseAttempt = Data.taggedEnum<LeaseAttempt>()

/**
 * What `inspect` sees of a held key: advisory, already stale when it arrives.
 *
 * @category models
 * @since 0.1.0
 */
export interface LeaseInfo {
  readonly key: LeaseKey.LeaseKey
  readonly owner: Option.Option<LeaseOwner>
  readonly remaining: Duration.Duration
  readonly fence: bigint
  readonly acquiredAt: Date
}

/**
 * A lease held by `hold` (for the life of a `Scope`) or `withLease` (around one effect), renewed in the background.
 * - `current`: the handle as of its latest renew (its `validUntil` moves on);
 * - `lost`: waits until the lease is lost and gives the reason; never completes while it is kept;
 * - `ensureValid`: fails with `LeaseLost` if the lease was lost or its local validity deadline has passed (then
 *   `because: "store-unavailable"`, as the renewer reports it). Call it right before each protected side effect:
 *   after a pause of the whole process (a long GC, a blocked event loop) it refuses the step even before the
 *   renewer has had a chance to notice the loss.
 *
 * @category models
 * @since 0.1.0
 */
export interface Active {
  readonly key: LeaseKey.LeaseKey
  readonly fence: bigint
  readonly current: Effect.Effect<Handle>
  readonly lost: Effect.Effect<LeaseError.LeaseLost>
  readonly ensureValid: Effect.Effect<void, LeaseError.LeaseError>
}

/**
 * Options of a single acquire: owner metadata stored with the lease.
 *
 * @category models
 * @since 0.1.0
 */
export interface AcquireOptions {
  readonly owner?: LeaseOwner | undefined
}

/**
 * Options of an auto-renewed lease.
 * - `owner`: metadata stored with the lease.
 * - `wait`: how long to wait for a held key: a duration budget (a bare number is milliseconds; `0` tries once), or
 *   a `Schedule` of retries.
 *   Default: up to the TTL. When it runs out the acquire fails with reason `AcquireTimeout`.
 * - `renewEvery`: the renew interval (a bare number is milliseconds); default and maximum a third of the TTL.
 *
 * @category models
 * @since 0.1.0
 */
export interface HoldOptions extends AcquireOptions {
  readonly wait?: Duration.Input | Schedule.Schedule<unknown, unknown> | undefined
  readonly renewEvery?: Duration.Input | undefined
}

/**
 * The lease service.
 *
 * @category services
 * @since 0.1.0
 */
export class Lease extends Context.Service<
  Lease,
  {
    /** Tries once to acquire `key` for `ttl` (a bare number is milliseconds; SET NX PX semantics); never waits. */
    readonly acquire: (
      key: string,
      ttl: Duration.Input,
      options?: AcquireOptions
    ) => Effect.Effect<LeaseAttempt, LeaseError.LeaseError>
    /** Extends a held lease to `ttl` (default: its own TTL); `None` when it is not held any more. */
    readonly renew: (lease: Handle, ttl?: Duration.Input) => Effect.Effect<Option.Option<Handle>, LeaseError.LeaseError>
    /** Releases a lease if its token still holds the key; `true` when it did. Idempotent. */
    readonly release: (lease: Handle) => Effect.Effect<boolean, LeaseError.LeaseError>
    /** Whether the lease's token still holds its key in the store. */
    readonly checkOwnership: (lease: Handle) => Effect.Effect<boolean, LeaseError.LeaseError>
    /** Who holds `key`, for how long, with which fence; advisory. */
    readonly inspect: (key: string) => Effect.Effect<Option.Option<LeaseInfo>, LeaseError.LeaseError>
    /**
     * Acquires (waiting as `options.wait` says), renews in the background, releases when the scope closes. When the
     * lease is lost, the fiber that acquired it is interrupted (see `hold`).
     */
    readonly hold: (
      key: string,
      ttl: Duration.Input,
      options?: HoldOptions
    ) => Effect.Effect<Active, LeaseError.LeaseError, Scope.Scope>
    /**
     * Runs `effect` (or a function of the held lease) while holding `key`; a loss interrupts the work and fails
     * with `LeaseLost` (see `withLease`).
     */
    readonly withLease: <A, E, R>(
      key: string,
      ttl: Duration.Input,
      effect: Effect.Effect<A, E, R> | ((lease: Active) => Effect.Effect<A, E, R>),
      options?: HoldOptions
    ) => Effect.Effect<A, E | LeaseError.LeaseError, R>
  }
>()("leasehold/Lease") {}

/** Owner metadata as checked: the text stored with the lease, and the value handed back in the handle. */
interface Owner {
  readonly text: string | undefined
  readonly value: Option.Option<LeaseOwner>
}

const noOwner: Result.Result<Owner, never> = Result.succeed({ text: undefined, value: Option.none() })

/**
 * How long an interrupted or failed acquire waits for the release that undoes it before leaving it running in the
 * background.
 */
const undoGraceMillis = 100

const fromResult = <A>(result: Result.Result<A, LeaseError.LeaseError>): Effect.Effect<A, LeaseError.LeaseError> =>
  Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(result.failure)

/**
 * Makes the lease service over the `LeaseStore` in context, with the `TokenSource` and `LeaseObserver` in context
 * (their defaults: CSPRNG tokens, no observer).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make: Effect.Effect<Lease["Service"], never, LeaseStore.LeaseStore | Scope.Scope> = Effect.gen(
  function* () {
    const store = yield* LeaseStore.LeaseStore
    const tokens = yield* TokenSource.TokenSource
    const observer = yield* LeaseObserver.LeaseObserver

    // Without an observer, the hot paths build no events at all.
    const observing = observer !== LeaseObserver.noop
    const observe = (event: Effect.Effect<void>) => Effect.ignoreCause(event)
    const infoOf = (lease: Handle): LeaseObserver.LeaseInfo => ({
      key: lease.key,
      fence: lease.fence,
      ttl: lease.ttl,
      owner: lease.owner
    })
    const foreign = (lease: Handle, operation: string) =>
      Effect.fail(LeaseError.make(new LeaseError.ForeignLease({ key: lease.key, operation })))
    /** Whether this service made `lease` (not a copy, a hand-made one, or one of another store). */
    const isOurs = (lease: Handle) => isGenuine(lease) && lease.storeId === store.id
    const checkStore = (lease: Handle, operation: string) => (isOurs(lease) ? Effect.void : foreign(lease, operation))
    const validKey = (key: string) => fromResult(LeaseKey.decode(key))
    const layerScope = yield* Effect.scope
    const holds = holdsMake()
    // The longest one try can take: the store's bound, the undo of a failed acquire, and timers firing late.
    const waiting = waitingMake(
      store,
      layerScope,
      store.maxOperationMillis === undefined ? undefined : store.maxOperationMillis + undoGraceMillis + 50,
      {
        heldWithoutExpiry: (held) =>
          observe(observer.heldWithoutExpiry({ key: held.key, remaining: held.remaining, holder: held.owner })),
        tryFailed: (key, error) => observe(observer.tryFailed(key, error))
      }
    )
    const renewals = renewer.make(
      store,
      {
        // Without an observer there is nothing to tell on the renewer's hot path (every lease, every interval).
        renewed: observing ? (lease) => observe(observer.renewed(infoOf(lease))) : undefined,
        renewFailed: (lease, error) => observe(observer.renewFailed(infoOf(lease), error)),
        lost: (lease, because) => observe(observer.lost(infoOf(lease), because))
      },
      layerScope
    )

    /** Releases a lease in the store; a release that took place wakes this process's next waiter at once. */
    const releaseInStore = (lease: Handle) =>
      Effect.map(store.release(lease.key, lease.token), (wasHeld) => {
        if (wasHeld) waiting.releasedHere(lease.key, lease.fence)
        return wasHeld
      })

    /**
     * Undoes an acquire whose reply was lost (interrupted, or failed) but whose command may have landed: the token
     * is released in the background (bounded by the store, stopped with the layer), and the caller waits for that
     * release at most `undoGraceMillis`, so an interrupter usually finds nothing locked, and a store that stopped
     * answering delays nobody for long.
     */
    const undoAcquire = (key: LeaseKey.LeaseKey, token: LeaseToken.LeaseToken) =>
      Effect.forkIn(Effect.ignore(store.release(key, token)), layerScope).pipe(
        Effect.flatMap((release) => Effect.timeoutOption(Fiber.await(release), undoGraceMillis))
      )

    /**
     * One acquire attempt with a fresh token. `onAcquired` runs uninterruptibly with the new lease, so a caller can
     * register its release before any interruption can land. If the attempt fails or is interrupted after the command
     * may have reached the store, the token is released (`undoAcquire`), so nothing stays locked.
     */
    const attempt = (
      key: LeaseKey.LeaseKey,
      ttlMillis: number,
      owner: Owner,
      onAcquired: ((lease: Handle) => Effect.Effect<void>) | undefined
    ): Effect.Effect<LeaseAttempt, LeaseError.LeaseError> =>
      Effect.flatMap(tokens.newToken, (newToken) => {
        // Every token is checked, whatever its source, so a malformed or short one never reaches the store; the
        // default source's are valid by construction (22 base64url characters), so they skip the check.
        const token = tokens === TokenSource.secureRandom ? Result.succeed(newToken) : LeaseToken.decode(newToken)
        if (Result.isFailure(token)) return Effect.fail(token.failure)
        return Effect.uninterruptibleMask((restore) =>
          Effect.clockWith((clock) => {
            const t0 = millisOf(clock)
            return Effect.matchCauseEffect(restore(store.acquire(key, token.success, ttlMillis, owner.text)), {
              onFailure: (cause) => Effect.andThen(undoAcquire(key, token.success), Effect.failCause(cause)),
              onSuccess: (reply): Effect.Effect<LeaseAttempt> =>
                reply._tag === "Held"
                  ? held(key, reply)
                  : granted(key, token.success, ttlMillis, owner, reply, t0, onAcquired)
            })
          })
        )
      })

    const held = (
      key: LeaseKey.LeaseKey,
      reply: { readonly remainingMillis: number; readonly owner: string | undefined }
    ): Effect.Effect<LeaseAttempt> => {
      const attempt = LeaseAttempt.Held({
        key,
        remaining: Duration.millis(reply.remainingMillis),
        owner: Option.fromUndefinedOr(validate.parseOwner(reply.owner))
      })
      return observing
        ? Effect.as(observe(observer.contended({ key, remaining: attempt.remaining, holder: attempt.owner })), attempt)
        : Effect.succeed(attempt)
    }

    /** The lease an acquire was granted, told to the observer and handed to `onAcquired`. */
    const granted = (
      key: LeaseKey.LeaseKey,
      token: LeaseToken.LeaseToken,
      ttlMillis: number,
      owner: Owner,
      reply: { readonly fence: bigint; readonly acquiredAt: number },
      t0: number,
      onAcquired: ((lease: Handle) => Effect.Effect<void>) | undefined
    ): Effect.Effect<LeaseAttempt> => {
      const lease = makeHandle({
        key,
        token,
        ttl: Duration.millis(ttlMillis),
        owner: owner.value,
        fence: reply.fence,
        acquiredAt: new Date(reply.acquiredAt),
        validUntil: t0 + ttlMillis - driftMillis(ttlMillis),
        storeId: store.id
      })
      const attempt = LeaseAttempt.Acquired({ lease })
      const told = observing ? observe(observer.acquired(infoOf(lease))) : undefined
      if (onAcquired === undefined) return told === undefined ? Effect.succeed(attempt) : Effect.as(told, attempt)
      return Effect.as(told === undefined ? onAcquired(lease) : Effect.andThen(onAcquired(lease), told), attempt)
    }

    const ownerOf = (owner: LeaseOwner | undefined): Result.Result<Owner, LeaseError.LeaseError> =>
      owner === undefined
        ? noOwner
        : Result.map(validate.encodeOwner(owner), (text) => ({
            text,
            value: text === undefined ? Option.none<LeaseOwner>() : Option.some(owner)
          }))

    // acquire, renew, release and checkOwnership are one round trip each and sit on every hot path: they are untraced
    // (a span costs about a third of a cycle); `hold`, which waits and holds, and `inspect` have spans.
    const acquire = (key: string, ttl: Duration.Input, options?: AcquireOptions) =>
      Effect.suspend(() => {
        const validatedKey = LeaseKey.decode(key)
        if (Result.isFailure(validatedKey)) return Effect.fail(validatedKey.failure)
        const ttlMillis = validate.ttlMillis(ttl, 1, "for a lease")
        if (Result.isFailure(ttlMillis)) return Effect.fail(ttlMillis.failure)
        const owner = ownerOf(options?.owner)
        if (Result.isFailure(owner)) return Effect.fail(owner.failure)
        return attempt(validatedKey.success, ttlMillis.success, owner.success, undefined)
      })

    const renew = Effect.fnUntraced(function* (lease: Handle, ttl?: Duration.Input) {
      yield* checkStore(lease, "renew")
      const ttlMillis = yield* fromResult(validate.ttlMillis(ttl ?? lease.ttl, 1, "for a lease"))
      const t0 = yield* monotonicMillis
      const reply = yield* store.renew(lease.key, lease.token, ttlMillis)
      if (reply !== "renewed") {
        yield* observe(observer.lost(infoOf(lease), reply))
        return Option.none<Handle>()
      }
      const renewed = makeHandle({
        ...lease,
        ttl: Duration.millis(ttlMillis),
        validUntil: t0 + ttlMillis - driftMillis(ttlMillis)
      })
      yield* observe(observer.renewed(infoOf(renewed)))
      return Option.some(renewed)
    })

    const release = (lease: Handle): Effect.Effect<boolean, LeaseError.LeaseError> => {
      if (!isOurs(lease)) return foreign(lease, "release")
      if (!observing) return releaseInStore(lease)
      return releaseInStore(lease).pipe(
        Effect.tapError((error) => observe(observer.releaseFailed(infoOf(lease), error))),
        Effect.tap((wasHeld) => observe(observer.released(infoOf(lease), wasHeld)))
      )
    }

    const checkOwnership = Effect.fnUntraced(function* (lease: Handle) {
      yield* checkStore(lease, "check ownership of")
      return yield* store.isHeld(lease.key, lease.token)
    })

    const inspect = Effect.fn("Lease.inspect")(function* (key: string) {
      const validatedKey = yield* validKey(key)
      const snapshot = yield* store.inspect(validatedKey)
      return Option.map(
        snapshot,
        (s): LeaseInfo => ({
          key: validatedKey,
          owner: Option.fromUndefinedOr(validate.parseOwner(s.owner)),
          remaining: Duration.millis(s.remainingMillis),
          fence: s.fence,
          acquiredAt: new Date(s.acquiredAt)
        })
      )
    })

    /** Final release of an auto-renewed lease: `release`, and a failure logged instead of failing the scope. */
    const finalRelease = (lease: Handle) =>
      Effect.catch(release(lease), (error) =>
        Effect.logWarning("leasehold: release failed; the lease will expire at its TTL", error.message).pipe(
          Effect.annotateLogs({ leaseKey: lease.key, fence: String(lease.fence) })
        )
      )

    // Helpers of `hold` that stay with a held lease, made outside it: a closure made inside would keep every
    // variable of `hold` that any of its closures uses, for the life of the lease.

    /**
     * The release of a lease, built when the scope closes (built now, it would keep its command until then). A lease
     * known lost (the renewer gave it up, or its local validity has passed) is released in the background, bounded by
     * the store and stopped with the layer: its loss is the caller's answer, due at once, and a store that did not
     * answer the renews may not answer the release either.
     */
    const releaseWhenClosed = (scope: Scope.Scope, lease: Handle, holding: Holding) =>
      Scope.addFinalizer(
        scope,
        Effect.clockWith((clock) => {
          holds.ended(holding)
          const validUntil = (holding.renewal?.lease ?? lease).validUntil
          const known = Deferred.isDoneUnsafe(holding.lost) || millisOf(clock) >= validUntil
          return known ? Effect.asVoid(Effect.forkIn(finalRelease(lease), layerScope)) : finalRelease(lease)
        })
      )

    /**
     * Interrupts the fiber that acquired the lease. A weak reference: a lease held by a scope that outlives that
     * fiber does not keep it.
     */
    const interruptOf = (holder: Fiber.Fiber<unknown, unknown>) => {
      const holderRef = new WeakRef(holder)
      return Effect.sync(() => holderRef.deref()?.interruptUnsafe())
    }

    // `hold` runs once per hold and may wait: it keeps its span ("Lease.hold", the wait is visible in traces),
    // without the call-site stack capture of `Effect.fn` (measured: a quarter of an uncontended hold's CPU).
    // `onLost` is what a loss does; the default interrupts the acquirer, `withLease` passes its own. It returns the
    // hold's record: the callers put the fibers under the lease in `holds` themselves, since the context this span
    // sets is restored when it ends.
    const holdWith = Effect.fnUntraced(function* (
      key: string,
      ttl: Duration.Input,
      options: HoldOptions | undefined,
      onLostOption: Effect.Effect<void> | undefined
    ) {
      const validatedKey = yield* validKey(key)
      const ttlMillis = yield* fromResult(
        validate.ttlMillis(ttl, Duration.toMillis(minimumAutoRenewTtl), "for an auto-renewed lease")
      )
      const intervalMillis = yield* fromResult(validate.renewEveryMillis(options?.renewEvery, ttlMillis))
      const wait = yield* fromResult(validate.waitPolicy(options?.wait, ttlMillis))
      const owner = yield* fromResult(ownerOf(options?.owner))
      const scope = yield* Effect.scope
      const holder = yield* Effect.fiber
      const reentry = holds.reentry(holder, validatedKey)
      if (reentry !== undefined) return yield* Effect.fail(reentry)
      const holding = new Holding(validatedKey, holder.id, yield* Deferred.make<LeaseError.LeaseLost>())
      const lease = yield* waiting.acquireWaiting(
        validatedKey,
        ttlMillis,
        wait,
        (onAcquired) => attempt(validatedKey, ttlMillis, owner, onAcquired),
        (lease) => releaseWhenClosed(scope, lease, holding)
      )
      const onLost = onLostOption ?? interruptOf(holder)
      // Registered after the release: finalizers run last-in first-out, so renewals stop before the release.
      holding.renewal = yield* Effect.uninterruptible(
        Effect.tap(renewals.add(lease, intervalMillis, holding.lost, onLost), (renewal) =>
          Scope.addFinalizer(scope, renewals.stop(renewal))
        )
      )
      holds.started(holding)
      return holding
    }, Effect.withSpan("Lease.hold"))

    const hold = (key: string, ttl: Duration.Input, options?: HoldOptions) =>
      Effect.flatMap(holdWith(key, ttl, options, undefined), (holding) =>
        holds.enter(holding, new ActiveLease(holding))
      )

    const withLease = <A, E, R>(
      key: string,
      ttl: Duration.Input,
      effect: Effect.Effect<A, E, R> | ((lease: Active) => Effect.Effect<A, E, R>),
      options?: HoldOptions
    ): Effect.Effect<A, E | LeaseError.LeaseError, R> =>
      Effect.scoped(
        Effect.withFiber((caller) => {
          // The work runs in a fiber of its own, which a loss interrupts; its end (or the loss) ends the wait below.
          // One fiber and no race: a hold's setup and teardown are on the path of every hand-off.
          const work: { fiber: Fiber.Fiber<A, E> | undefined; lost: boolean } = { fiber: undefined, lost: false }
          const onLost = Effect.sync(() => {
            work.lost = true
            work.fiber?.interruptUnsafe()
          })
          return Effect.flatMap(holdWith(key, ttl, options, onLost), (holding) =>
            runUnderLease(
              holds.under(caller.context as Context.Context<R>, holding),
              new ActiveLease(holding),
              work,
              effect
            )
          )
        })
      )

    return Lease.of({ acquire, renew, release, checkOwnership, inspect, hold, withLease })
  }
)

/**
 * The `Active` of one held lease. Its effects are made when asked for, so that a held lease keeps only its renewal
 * record and its loss signal (10,000 held leases are a workload, see the bench's `hold-many`).
 */
class ActiveLease implements Active {
  readonly key: LeaseKey.LeaseKey
  readonly fence: bigint
  /** Acquired: its renewal is set. */
  readonly #holding: Holding

  constructor(holding: Holding) {
    this.key = holding.key
    this.fence = holding.renewal!.lease.fence
    this.#holding = holding
  }

  get current(): Effect.Effect<Handle> {
    return Effect.sync(() => this.#holding.renewal!.lease)
  }

  get lost(): Effect.Effect<LeaseError.LeaseLost> {
    return Deferred.await(this.#holding.lost)
  }

  get ensureValid(): Effect.Effect<void, LeaseError.LeaseError> {
    return Effect.flatMap(monotonicMillis, (now) => {
      const lost = this.#holding.lost
      if (Deferred.isDoneUnsafe(lost)) {
        return Effect.flatMap(Deferred.await(lost), (lost) => Effect.fail(LeaseError.make(lost)))
      }
      if (now < this.#holding.renewal!.lease.validUntil) return Effect.void
      // The renewer reports the same condition (its deadline passed without a confirmed renew) the same way.
      return Effect.fail(
        LeaseError.make(new LeaseError.LeaseLost({ key: this.key, because: "store-unavailable", fence: this.fence }))
      )
    })
  }

  toJSON() {
    return { _tag: "Active", key: this.key, fence: String(this.fence) }
  }

  [Symbol.for("nodejs.util.inspect.custom")]() {
    return this.toJSON()
  }
}

/**
 * The lease service over the `LeaseStore` layer it is given (`LeaseStore.layerRedis` or `LeaseStore.layerMemory`).
 * Provide `TokenSource.layer` or `LeaseObserver.layer…` to it to change those.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer: Layer.Layer<Lease, never, LeaseStore.LeaseStore> = Layer.effect(Lease, make)

/**
 * Tries once to acquire `key` for `ttl` (a `Duration` input, or a bare number of milliseconds): `Acquired` with the
 * lease, or `Held` by someone else. Never waits.
 *
 * ```ts
 * const attempt = yield* Lease.acquire("jobs:nightly", "30 seconds", { owner: { id: "worker-1" } })
 * if (attempt._tag === "Acquired") yield* Lease.release(attempt.lease)
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const acquire = (
  key: string,
  ttl: Duration.Input,
  options?: AcquireOptions
): Effect.Effect<LeaseAttempt, LeaseError.LeaseError, Lease> => Lease.use((lease) => lease.acquire(key, ttl, options))

/**
 * Extends a held lease to `ttl` (default: the lease's own TTL; a bare number is milliseconds). `None` when the lease
 * is not held any more. Only a handle leasehold made is accepted: a copy fails with `ForeignLease`.
 *
 * @category operations
 * @since 0.1.0
 */
export const renew = (
  lease: Handle,
  ttl?: Duration.Input
): Effect.Effect<Option.Option<Handle>, LeaseError.LeaseError, Lease> =>
  Lease.use((service) => service.renew(lease, ttl))

/**
 * Releases a lease if its token still holds the key; `true` when it did, `false` when it was not held any more.
 * Idempotent, and only the owner's token can release.
 *
 * @category operations
 * @since 0.1.0
 */
export const release = (lease: Handle): Effect.Effect<boolean, LeaseError.LeaseError, Lease> =>
  Lease.use((service) => service.release(lease))

/**
 * Whether the lease's token still holds its key in the store.
 *
 * @category operations
 * @since 0.1.0
 */
export const checkOwnership = (lease: Handle): Effect.Effect<boolean, LeaseError.LeaseError, Lease> =>
  Lease.use((service) => service.checkOwnership(lease))

/**
 * Who holds `key`, for how long and with which fence; `None` when nobody does. Advisory: it is stale on arrival.
 *
 * @category operations
 * @since 0.1.0
 */
export const inspect = (key: string): Effect.Effect<Option.Option<LeaseInfo>, LeaseError.LeaseError, Lease> =>
  Lease.use((service) => service.inspect(key))

/**
 * Holds `key` for the life of the current `Scope`: waits for it (as `options.wait` says), renews it every
 * `renewEvery` (default TTL/3), and releases it when the scope closes (after stopping the renewals). A bare number
 * TTL is milliseconds.
 *
 * If the lease is lost, the fiber that acquired it is interrupted (and `lost` gives the reason): the work stops,
 * but as an interruption, not a typed failure. A loop that holds leases one after another should use `withLease`,
 * which fails with `LeaseLost` instead, so the loop can go on. A lost lease's scope closes without waiting for its
 * release, which is tried in the background.
 *
 * Leases are not reentrant: holding a key again, from the same fiber or a fiber it forked while holding it, fails
 * at once with `ReentrantAcquire` instead of waiting for itself.
 *
 * ```ts
 * Effect.scoped(Effect.gen(function* () {
 *   const lease = yield* Lease.hold("jobs:nightly", "30 seconds")
 *   yield* doWork(lease.fence)
 * }))
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const hold = (
  key: string,
  ttl: Duration.Input,
  options?: HoldOptions
): Effect.Effect<Active, LeaseError.LeaseError, Lease | Scope.Scope> =>
  Lease.use((service) => service.hold(key, ttl, options))

/**
 * Runs `effect` while holding `key`: waits for the lease, renews it while the effect runs, releases it afterwards.
 * If the lease is lost, the effect is interrupted before the lease can expire in the store, and the result is a
 * `LeaseError` with reason `LeaseLost`, as soon as the effect has stopped (the release is tried in the background).
 * A failed release never replaces the effect's own result. A bare number TTL is milliseconds. Leases are not
 * reentrant: `withLease` of a key that the calling fiber (or one it was forked from) holds fails at once with
 * `ReentrantAcquire`.
 *
 * Data-first or data-last; the work may be an effect, or a function of the held lease, to use its fence:
 *
 * ```ts
 * Lease.withLease("reports", "10 seconds", (lease) => writeReport({ fence: lease.fence }))
 * writeSummary.pipe(Lease.withLease("reports", "10 seconds", { wait: 0 }))
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const withLease: {
  (
    key: string,
    ttl: Duration.Input,
    options?: HoldOptions
  ): <A, E, R>(
    effect: Effect.Effect<A, E, R> | ((lease: Active) => Effect.Effect<A, E, R>)
  ) => Effect.Effect<A, E | LeaseError.LeaseError, R | Lease>
  <A, E, R>(
    key: string,
    ttl: Duration.Input,
    effect: Effect.Effect<A, E, R> | ((lease: Active) => Effect.Effect<A, E, R>),
    options?: HoldOptions
  ): Effect.Effect<A, E | LeaseError.LeaseError, R | Lease>
} = (<A, E, R>(
  key: string,
  ttl: Duration.Input,
  effectOrOptions?: Effect.Effect<A, E, R> | ((lease: Active) => Effect.Effect<A, E, R>) | HoldOptions,
  options?: HoldOptions
) => {
  // Not `Function.dual`: the work is the third argument here, where `dual` wants the data first.
  const run = (
    effect: Effect.Effect<A, E, R> | ((lease: Active) => Effect.Effect<A, E, R>),
    runOptions?: HoldOptions
  ) => Lease.use((service) => service.withLease(key, ttl, effect, runOptions))
  return Effect.isEffect(effectOrOptions) || typeof effectOrOptions === "function"
    ? run(effectOrOptions, options)
    : (effect: Effect.Effect<A, E, R> | ((lease: Active) => Effect.Effect<A, E, R>)) => run(effect, effectOrOptions)
}) as never

/**
 * Runs the work of `withLease` in a fiber of its own and waits for it. When the lease is lost, the renewer interrupts
 * that fiber (`work.lost`), and the result is the `LeaseLost` failure once the work's finalizers have run. When the
 * caller is interrupted, the work is interrupted and waited for, so the lease is released after the work has stopped.
 */
const runUnderLease = <A, E, R>(
  context: Context.Context<R>,
  active: Active,
  work: { fiber: Fiber.Fiber<A, E> | undefined; lost: boolean },
  effect: Effect.Effect<A, E, R> | ((lease: Active) => Effect.Effect<A, E, R>)
): Effect.Effect<A, E | LeaseError.LeaseError> =>
  Effect.callback<A, E | LeaseError.LeaseError>((resume) => {
    const failLost = Effect.flatMap(active.lost, (lost) => Effect.fail(LeaseError.make(lost)))
    // Lost before the work could start: it never starts.
    if (work.lost) return resume(failLost)
    const fiber = Effect.runForkWith(context)(typeof effect === "function" ? effect(active) : effect)
    work.fiber = fiber
    fiber.addObserver((exit) => resume(work.lost && Exit.hasInterrupts(exit) ? failLost : exit))
    return Effect.suspend(() => {
      fiber.interruptUnsafe()
      return Effect.asVoid(Fiber.await(fiber))
    })
  })
